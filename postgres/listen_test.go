package postgres_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
)

// The live feed's wake-ups: when listening (re)starts, since commits made meanwhile were not
// notified, and at each commit of events by any connection, never for a rolled-back insert.
func TestListenEventsWakesOnCommitsAndAfterReconnecting(t *testing.T) {
	url := postgrestest.CreateDatabase(t)
	writer := postgrestest.Open(t, url)
	if _, err := writer.MigrateUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, "127.0.0.1:5432")
	listener := postgrestest.Open(t, proxy.URL(url))
	wakes := make(chan struct{}, 100)
	var failures atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		listener.ListenEvents(ctx, func() { wakes <- struct{}{} }, 50*time.Millisecond, func(error) { failures.Add(1) })
	}()
	t.Cleanup(func() { cancel(); <-done })

	wake := func(when string) {
		t.Helper()
		select {
		case <-wakes:
		case <-time.After(2 * time.Second):
			t.Fatalf("no wake %s", when)
		}
	}
	none := func(when string) {
		t.Helper()
		select {
		case <-wakes:
			t.Fatalf("a wake %s", when)
		case <-time.After(200 * time.Millisecond):
		}
	}
	insert := func() {
		t.Helper()
		if err := writer.InsertEvents(context.Background(), &fluxauth.SecurityEvent{Type: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	wake("once listening")
	insert()
	wake("at a commit")
	rolledBack := errors.New("roll back")
	if err := writer.Update(context.Background(), func(tx fluxauth.Tx) error {
		if err := tx.InsertEvents(context.Background(), &fluxauth.SecurityEvent{Type: "test"}); err != nil {
			return err
		}
		return rolledBack
	}); !errors.Is(err, rolledBack) {
		t.Fatal(err)
	}
	none("for a rolled-back insert")

	proxy.Stop()
	insert() // while the listener is cut off: not notified to it
	for failures.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	proxy.Start()
	wake("after reconnecting")
}
