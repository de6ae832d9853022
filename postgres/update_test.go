package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/google/uuid"
)

func TestDeadlockedUpdateIsRetriedNotReported(t *testing.T) {
	db := postgrestest.MustOpenDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	a, b := token(now), token(now)
	if err := db.Update(ctx, func(tx fluxauth.Tx) error {
		if err := tx.InsertRefreshToken(ctx, a); err != nil {
			return err
		}
		return tx.InsertRefreshToken(ctx, b)
	}); err != nil {
		t.Fatal(err)
	}

	// Two transactions update the same two rows in opposite orders, each waiting on its first
	// attempt until the other holds its first row: PostgreSQL must abort one with a deadlock.
	var firstRowsHeld sync.WaitGroup
	firstRowsHeld.Add(2)
	var attempts atomic.Int32
	revokeBoth := func(first, second string) error {
		tried := false
		return db.Update(ctx, func(tx fluxauth.Tx) error {
			attempts.Add(1)
			if _, err := tx.RevokeSession(ctx, first, now, "test"); err != nil {
				return err
			}
			if !tried {
				tried = true
				firstRowsHeld.Done()
				firstRowsHeld.Wait()
			}
			_, err := tx.RevokeSession(ctx, second, now, "test")
			return err
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = revokeBoth(a.SessionID, b.SessionID) })
	wg.Go(func() { errs[1] = revokeBoth(b.SessionID, a.SessionID) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d: %v", i, err)
		}
	}
	if n := attempts.Load(); n < 3 {
		t.Fatalf("%d attempts, want a retry after the deadlock", n)
	}
}

func token(now time.Time) *fluxauth.RefreshToken {
	id := uuid.NewString()
	return &fluxauth.RefreshToken{
		ID: id, SessionID: uuid.NewString(), UserID: uuid.NewString(), TokenHash: id,
		SessionCreatedAt: now, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour),
	}
}
