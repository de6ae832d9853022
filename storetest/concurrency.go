package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var concurrencyTests = []test{
	{"fifty concurrent rotations of one session leave one chain with one live tip", func(t *testing.T, s fluxauth.Store) {
		const n = 50
		ctx := context.Background()
		root := newToken(newID(), at(0))
		insertTokens(t, s, root)
		clock := &stepClock{now: at(0)}
		// Every token written, by ID, so the walk below can look each parent up by its hash. Attempts
		// a retried transaction threw away stay in it, harmlessly: the walk follows the stored rows.
		var mu sync.Mutex
		written := map[string]*fluxauth.RefreshToken{root.ID: root}

		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				errs <- s.Update(ctx, func(tx fluxauth.Tx) error {
					if err := tx.LockSession(ctx, root.SessionID); err != nil {
						return fmt.Errorf("LockSession: %w", err)
					}
					tip, err := tx.SessionTip(ctx, root.SessionID)
					if err != nil {
						return fmt.Errorf("SessionTip: %w", err)
					}
					now := clock.next()
					child := childOf(tip, now)
					mu.Lock()
					written[child.ID] = child
					mu.Unlock()
					ok, err := tx.RotateRefreshToken(ctx, tip.ID, child, now)
					if err == nil && !ok {
						err = errors.New("the tip read under the session lock was no longer live")
					}
					if err != nil {
						return fmt.Errorf("RotateRefreshToken: %w", err)
					}
					return nil
				})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		}
		if t.Failed() {
			t.FailNow()
		}

		// Walk back from the tip: every rotation must have extended the one chain, so it reaches the
		// root in exactly n links, each spent. A fork would leave it shorter.
		update(t, s, func(tx fluxauth.Tx) error {
			tip, err := tx.SessionTip(ctx, root.SessionID)
			must(t, "SessionTip", err)
			if tip.Spent() || tip.Revoked() {
				t.Fatalf("tip is spent %v, revoked %v; want live", tip.Spent(), tip.Revoked())
			}
			cur, length := tip, 1
			for cur.ParentID != "" {
				w, ok := written[cur.ParentID]
				if !ok {
					t.Fatalf("link %d: parent %s is no token this test wrote", length, cur.ParentID)
				}
				parent, err := tx.RefreshTokenByHash(ctx, w.TokenHash)
				must(t, "RefreshTokenByHash", err)
				if parent.ID != cur.ParentID || parent.SessionID != root.SessionID || !parent.Spent() {
					t.Fatalf("link %d: id %s (want %s), session %s, spent %v", length, parent.ID, cur.ParentID, parent.SessionID, parent.Spent())
				}
				cur, length = parent, length+1
			}
			if cur.ID != root.ID || length != n+1 {
				t.Fatalf("chain from the tip has %d links ending at %s, want %d ending at the root", length, cur.ID, n+1)
			}
			return nil
		})
		active, err := s.ActiveSessions(ctx, root.UserID, at(time.Hour))
		must(t, "ActiveSessions", err)
		if len(active) != 1 {
			t.Fatalf("ActiveSessions = %d tips, want 1", len(active))
		}
	}},
	{"concurrent reads and writes of many kinds never fail", func(t *testing.T, s fluxauth.Store) {
		const workers = 16
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, workers*4)
		for w := range workers {
			wg.Go(func() {
				for i := range 5 {
					u := newUser(fmt.Sprintf("user-%d-%d@example.com", w, i))
					if err := s.CreateUser(ctx, u); err != nil {
						errs <- fmt.Errorf("CreateUser: %w", err)
						return
					}
					rt := newToken(u.ID, at(time.Duration(i)*time.Second))
					err := s.Update(ctx, func(tx fluxauth.Tx) error {
						if err := tx.InsertRefreshToken(ctx, rt); err != nil {
							return err
						}
						return tx.InsertEvents(ctx, newEvent(fluxauth.EventSignup, fluxauth.SeverityInfo, u.ID, "", rt.CreatedAt))
					})
					if err != nil {
						errs <- fmt.Errorf("Update: %w", err)
						return
					}
					if _, err := s.UserByEmail(ctx, u.Email); err != nil {
						errs <- fmt.Errorf("UserByEmail: %w", err)
						return
					}
					if _, err := s.ActiveSessions(ctx, u.ID, at(0)); err != nil {
						errs <- fmt.Errorf("ActiveSessions: %w", err)
						return
					}
					if _, err := s.ListEvents(ctx, fluxauth.EventFilter{Limit: 10}); err != nil {
						errs <- fmt.Errorf("ListEvents: %w", err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if evs := listEvents(t, s, fluxauth.EventFilter{Type: fluxauth.EventSignup}); len(evs) != workers*5 {
			t.Fatalf("signup events = %d, want %d", len(evs), workers*5)
		}
	}},
}
