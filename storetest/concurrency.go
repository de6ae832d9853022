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
					if err := tx.SpendRefreshToken(ctx, tip.ID, now); err != nil {
						return fmt.Errorf("SpendRefreshToken: %w", err)
					}
					return tx.InsertRefreshToken(ctx, childOf(tip, now))
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

		update(t, s, func(tx fluxauth.Tx) error {
			cur, err := tx.RefreshTokenByID(ctx, root.ID)
			must(t, "RefreshTokenByID root", err)
			length := 1
			for {
				next, err := tx.ChildOf(ctx, cur.ID)
				if errors.Is(err, fluxauth.ErrNotFound) {
					break
				}
				must(t, "ChildOf", err)
				if next.ParentID != cur.ID || next.SessionID != root.SessionID {
					t.Fatalf("link %d: parent %s, session %s", length, next.ParentID, next.SessionID)
				}
				if !cur.Spent() {
					t.Fatalf("link %d has a child but is not spent", length-1)
				}
				cur, length = next, length+1
			}
			if length != n+1 {
				t.Fatalf("chain has %d links, want %d", length, n+1)
			}
			if cur.Spent() || cur.Revoked() {
				t.Fatalf("last link is spent %v, revoked %v; want live", cur.Spent(), cur.Revoked())
			}
			tip, err := tx.SessionTip(ctx, root.SessionID)
			must(t, "SessionTip", err)
			if tip.ID != cur.ID {
				t.Fatalf("SessionTip = %s, want the end of the chain %s", tip.ID, cur.ID)
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
