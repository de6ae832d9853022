package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/token"
)

// A key rotated into the shared file is picked up when the clock reaches the next reload, every
// keyReloadEvery on the App's clock.
func TestRotatedKeysAreReloadedOnTheClocksSchedule(t *testing.T) {
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "keys.json")
	keys, err := token.LoadOrCreateKeyFile(path, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := keys.CurrentKID()
	logs := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); reloadKeys(ctx, keys, clock, slog.New(slog.NewTextHandler(logs, nil))) }()
	defer func() { cancel(); <-done }()

	if at := clock.WaitTimers(t, 1); !at[0].Equal(clock.Now().Add(keyReloadEvery)) {
		t.Fatalf("the reload ticker fires at %v, want keyReloadEvery from now", at[0])
	}
	rotated, err := token.RotateKeyFile(path, clock, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if keys.CurrentKID() != before {
		t.Fatal("the key set changed before a reload")
	}
	clock.Advance(keyReloadEvery)
	for deadline := time.Now().Add(time.Minute); keys.CurrentKID() != rotated.CurrentKID(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("current kid %s after the reload, want the rotated %s", keys.CurrentKID(), rotated.CurrentKID())
		}
	}
}
