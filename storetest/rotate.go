package storetest

import (
	"context"
	"errors"
	"sync"
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
	{"concurrent rotations of one token through LockRefreshToken succeed once", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		rt := newToken(newID(), at(0))
		insertTokens(t, s, rt)
		var wg sync.WaitGroup
		var mu sync.Mutex
		rotated := 0
		for range 20 {
			wg.Go(func() {
				err := s.Update(ctx, func(tx fluxauth.Tx) error {
					cur, _, err := tx.LockRefreshToken(ctx, rt.TokenHash)
					if err != nil {
						return err
					}
					ok, err := tx.RotateRefreshToken(ctx, cur.ID, childOf(cur, at(time.Minute)), at(time.Minute))
					if ok {
						mu.Lock()
						rotated++
						mu.Unlock()
					}
					return err
				})
				if err != nil {
					t.Errorf("Update: %v", err)
				}
			})
		}
		wg.Wait()
		if rotated != 1 {
			t.Fatalf("one token rotated %d times", rotated)
		}
	}},
}
