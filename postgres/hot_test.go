package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
)

// A rotation's spend changes no indexed column, so PostgreSQL makes it a HOT update: the spent
// version stays on its page and no index gets an entry for it. Without that, every refresh rewrote
// all of the spent token's index entries (docs/BENCHMARKS.md, the refresh figures).
func TestSpendingARefreshTokenIsAHOTUpdate(t *testing.T) {
	db := postgrestest.MustOpenDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	current := token(now)
	if err := db.Update(ctx, func(tx fluxauth.Tx) error { return tx.InsertRefreshToken(ctx, current) }); err != nil {
		t.Fatal(err)
	}
	const rotations = 200
	for i := range rotations {
		next := token(now)
		next.ID, next.TokenHash = "", uuid.NewString()
		next.SessionID, next.UserID, next.ParentID = current.SessionID, current.UserID, current.ID
		if err := db.Update(ctx, func(tx fluxauth.Tx) error {
			ok, err := tx.RotateRefreshToken(ctx, current.ID, next, now)
			if err == nil && !ok {
				t.Fatalf("rotation %d: the current token was not live", i)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		current = next
	}
	// The statistics reach pg_stat_user_tables when each connection next goes idle for a moment.
	var updates, hot int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := db.Pool().QueryRow(ctx, `SELECT pg_stat_force_next_flush()`).Scan(new(string)); err != nil {
			t.Fatal(err)
		}
		if err := db.Pool().QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
			WHERE relname = 'refresh_tokens'`).Scan(&updates, &hot); err != nil {
			t.Fatal(err)
		}
		if updates >= rotations || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if updates < rotations {
		t.Fatalf("pg_stat_user_tables shows %d updates of refresh_tokens after %d rotations", updates, rotations)
	}
	// A spend finds no room on a full page now and then; nearly all must be HOT.
	if hot < updates*9/10 {
		t.Fatalf("%d of %d spends were HOT updates, want at least 90%%", hot, updates)
	}
	t.Logf("%d of %d spends were HOT", hot, updates)
}
