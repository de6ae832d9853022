package postgres_test

import (
	"context"
	"errors"
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

// Update's transaction begins with its first statement (lazyTx): whatever that statement does, the
// transaction's outcome is what a plain BEGIN … COMMIT would give.
func TestUpdateBegunWithItsFirstStatement(t *testing.T) {
	db := postgrestest.MustOpenDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	existing := token(now)
	if err := db.Update(ctx, func(tx fluxauth.Tx) error { return tx.InsertRefreshToken(ctx, existing) }); err != nil {
		t.Fatal(err)
	}

	byHash := func(hash string) error {
		return db.Update(ctx, func(tx fluxauth.Tx) error {
			_, err := tx.RefreshTokenByHash(ctx, hash)
			return err
		})
	}

	t.Run("a transaction without statements commits nothing and succeeds", func(t *testing.T) {
		if err := db.Update(ctx, func(tx fluxauth.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a failing first statement is the statement's error, and the connection is reused", func(t *testing.T) {
		dup := token(now)
		dup.TokenHash = existing.TokenHash
		opened := db.Pool().Stat().NewConnsCount()
		const failures = 20
		for range failures {
			err := db.Update(ctx, func(tx fluxauth.Tx) error { return tx.InsertRefreshToken(ctx, dup) })
			if !errors.Is(err, fluxauth.ErrConflict) {
				t.Fatalf("duplicate insert as the first statement: %v, want ErrConflict", err)
			}
		}
		// Each failed transaction was rolled back and its connection went back to the pool clean;
		// one left inside its transaction would be closed by the pool, and a new one opened.
		if n := db.Pool().Stat().NewConnsCount() - opened; n > 2 {
			t.Fatalf("%d connections opened for %d failed transactions run one after another, want them reused", n, failures)
		}
		if err := byHash(existing.TokenHash); err != nil {
			t.Fatalf("the store no longer answers after failed transactions: %v", err)
		}
	})
	t.Run("a transaction whose statement failed cannot commit, even if fn ignores the failure", func(t *testing.T) {
		fresh := token(now)
		dup := token(now)
		dup.TokenHash = existing.TokenHash
		err := db.Update(ctx, func(tx fluxauth.Tx) error {
			if err := tx.InsertRefreshToken(ctx, fresh); err != nil {
				return err
			}
			_ = tx.InsertRefreshToken(ctx, dup) // fails, and the transaction with it
			return nil
		})
		if err == nil {
			t.Fatal("Update committed a transaction PostgreSQL had aborted")
		}
		if err := byHash(fresh.TokenHash); !errors.Is(err, fluxauth.ErrNotFound) {
			t.Fatalf("the aborted transaction's first insert is visible: %v", err)
		}
	})
	t.Run("a first statement returning rows reads them all", func(t *testing.T) {
		other := token(now)
		other.UserID = existing.UserID
		if err := db.Update(ctx, func(tx fluxauth.Tx) error { return tx.InsertRefreshToken(ctx, other) }); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Update(ctx, func(tx fluxauth.Tx) error {
			got, err := tx.ActiveSessions(ctx, existing.UserID, now)
			n = len(got)
			return err
		}); err != nil || n != 2 {
			t.Fatalf("ActiveSessions as the first statement: %d sessions, %v; want 2", n, err)
		}
	})
}
