package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var rotateTests = []test{
	{"MarkReissued marks a token once and keeps the first time", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		rt, marked := newToken(newID(), at(0)), newToken(newID(), at(0))
		marked.ReissuedAt = at(time.Second)
		insertTokens(t, s, rt, marked)
		equal(t, "inserted with a mark", readToken(t, s, marked.TokenHash), marked)
		update(t, s, func(tx fluxauth.Tx) error {
			must(t, "MarkReissued", tx.MarkReissued(ctx, rt.ID, at(time.Minute)))
			must(t, "MarkReissued again", tx.MarkReissued(ctx, rt.ID, at(time.Hour)))
			wantErr(t, "MarkReissued of an unknown token", tx.MarkReissued(ctx, newID(), at(time.Hour)), fluxauth.ErrNotFound)
			return nil
		})
		rt.ReissuedAt = at(time.Minute)
		equal(t, "marked", readToken(t, s, rt.TokenHash), rt)
	}},
	{"LockRefreshToken returns the token with its user", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "lock@example.com")
		rt := newToken(u.ID, at(0))
		orphan := newToken(newID(), at(0)) // its account is gone
		insertTokens(t, s, rt, orphan)
		update(t, s, func(tx fluxauth.Tx) error {
			got, gotUser, err := tx.LockRefreshToken(ctx, rt.TokenHash)
			must(t, "LockRefreshToken", err)
			equal(t, "token", got, rt)
			if gotUser == nil || gotUser.ID != u.ID || gotUser.Email != u.Email || gotUser.Name != u.Name || gotUser.UserType != u.UserType {
				t.Fatalf("user %+v, want %+v", gotUser, u)
			}
			if gotUser.PasswordHash != "" {
				t.Fatal("the refresh path does not need the password hash")
			}
			_, gotUser, err = tx.LockRefreshToken(ctx, orphan.TokenHash)
			must(t, "LockRefreshToken of an orphan", err)
			if gotUser != nil {
				t.Fatalf("orphan's user %+v", gotUser)
			}
			_, _, err = tx.LockRefreshToken(ctx, hashOf("nope"))
			wantErr(t, "LockRefreshToken of an unknown hash", err, fluxauth.ErrNotFound)
			return nil
		})
	}},
	{"RotateRefreshToken spends a live token and inserts its successor", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		rt := newToken(newID(), at(0))
		insertTokens(t, s, rt)
		next := childOf(rt, at(time.Minute))
		update(t, s, func(tx fluxauth.Tx) error {
			ok, err := tx.RotateRefreshToken(ctx, rt.ID, next, at(time.Minute))
			must(t, "RotateRefreshToken", err)
			if !ok {
				t.Fatal("a live token was not rotated")
			}
			return nil
		})
		rt.SpentAt, rt.LastUsedAt = at(time.Minute), at(time.Minute)
		equal(t, "spent", readToken(t, s, rt.TokenHash), rt)
		equal(t, "successor", readToken(t, s, next.TokenHash), next)
	}},
	{"RotateRefreshToken writes nothing for a spent or revoked token", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		spent := newToken(newID(), at(0))
		insertTokens(t, s, spent)
		rotate(t, s, spent, at(time.Minute))
		revoked := newToken(newID(), at(0))
		revoked.RevokedAt = at(time.Second)
		insertTokens(t, s, revoked)
		for _, cur := range []*fluxauth.RefreshToken{spent, revoked} {
			next := childOf(cur, at(time.Hour))
			update(t, s, func(tx fluxauth.Tx) error {
				ok, err := tx.RotateRefreshToken(ctx, cur.ID, next, at(time.Hour))
				must(t, "RotateRefreshToken", err)
				if ok {
					t.Fatalf("token %s rotated again", cur.ID)
				}
				return nil
			})
			if _, err := tokenByHash(s, next.TokenHash); !errors.Is(err, fluxauth.ErrNotFound) {
				t.Fatalf("successor of a dead token was written: %v", err)
			}
		}
	}},
	{"concurrent rotations of one token succeed once even without the session lock", func(t *testing.T, s fluxauth.Store) {
		// RotateRefreshToken's own "only if live" check must hold on its own: the refresh path
		// relies on it for a row read before the lock was granted.
		ctx := context.Background()
		rt := newToken(newID(), at(0))
		insertTokens(t, s, rt)
		var wg sync.WaitGroup
		var rotated atomic.Int32
		for range 20 {
			wg.Go(func() {
				err := s.Update(ctx, func(tx fluxauth.Tx) error {
					ok, err := tx.RotateRefreshToken(ctx, rt.ID, childOf(rt, at(time.Minute)), at(time.Minute))
					if ok {
						rotated.Add(1)
					}
					return err
				})
				if err != nil {
					t.Errorf("Update: %v", err) // not Fatal: this runs off the test goroutine
				}
			})
		}
		wg.Wait()
		if n := rotated.Load(); n != 1 {
			t.Fatalf("one token rotated %d times", n)
		}
	}},
}

var lockTests = []backendTest{
	{"LockRefreshToken holds the session until commit, so the next holder reads what the first wrote", func(t *testing.T, b Backend) {
		// What the lock adds to RotateRefreshToken's own check: a second transaction that locks the
		// same session waits for the first to commit, so everything it reads after the lock (here
		// the session's tip) is current. The first transaction holds the lock and waits on a channel
		// until the second is seen queued behind it; only then does it commit.
		ctx := context.Background()
		s := b.Store
		rt := newToken(newID(), at(0))
		insertTokens(t, s, rt)
		child := childOf(rt, at(time.Minute))

		var (
			sawTip  *fluxauth.RefreshToken
			rotated bool
		)
		secondWaitsForFirst(t, b, func(tx fluxauth.Tx) error {
			if _, _, err := tx.LockRefreshToken(ctx, rt.TokenHash); err != nil {
				return fmt.Errorf("LockRefreshToken: %w", err)
			}
			ok, err := tx.RotateRefreshToken(ctx, rt.ID, child, at(time.Minute))
			if err == nil && !ok {
				err = errors.New("a live token was not rotated")
			}
			if err != nil {
				return fmt.Errorf("RotateRefreshToken: %w", err)
			}
			return nil
		}, func(tx fluxauth.Tx, locked func()) error {
			if _, _, err := tx.LockRefreshToken(ctx, rt.TokenHash); err != nil {
				return fmt.Errorf("LockRefreshToken: %w", err)
			}
			locked()
			tip, err := tx.SessionTip(ctx, rt.SessionID)
			if err != nil {
				return fmt.Errorf("SessionTip: %w", err)
			}
			ok, err := tx.RotateRefreshToken(ctx, tip.ID, childOf(tip, at(2*time.Minute)), at(2*time.Minute))
			if err != nil {
				return fmt.Errorf("RotateRefreshToken: %w", err)
			}
			sawTip, rotated = tip, ok
			return nil
		})
		if sawTip.ID != child.ID {
			t.Fatalf("after the lock the second transaction read tip %s, want %s, the first's commit", sawTip.ID, child.ID)
		}
		if !rotated {
			t.Fatal("the second transaction could not rotate the tip it read after the lock")
		}
	}},
}
