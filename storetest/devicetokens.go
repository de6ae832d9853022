package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// newDeviceToken returns a fresh device token of userID made at created, living 90 days.
func newDeviceToken(userID string, created time.Time) *fluxauth.DeviceToken {
	return &fluxauth.DeviceToken{ID: newID(), UserID: userID, CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour)}
}

func insertDeviceTokens(tb testing.TB, s fluxauth.Store, tokens ...*fluxauth.DeviceToken) {
	tb.Helper()
	update(tb, s, func(tx fluxauth.Tx) error {
		for _, dt := range tokens {
			if err := tx.InsertDeviceToken(context.Background(), dt); err != nil {
				return fmt.Errorf("InsertDeviceToken: %w", err)
			}
		}
		return nil
	})
}

// attempt calls AttemptDeviceToken, failing tb on an error.
func attempt(tb testing.TB, s fluxauth.Store, dt *fluxauth.DeviceToken, userID string, max int, now time.Time) bool {
	tb.Helper()
	ok, err := s.AttemptDeviceToken(context.Background(), dt.ID, userID, max, now)
	must(tb, "AttemptDeviceToken", err)
	return ok
}

// resetDevice calls ResetDeviceToken in a transaction of its own.
func resetDevice(tb testing.TB, s fluxauth.Store, id string, expires time.Time) (live bool) {
	tb.Helper()
	update(tb, s, func(tx fluxauth.Tx) error {
		var err error
		live, err = tx.ResetDeviceToken(context.Background(), id, expires)
		return err
	})
	return live
}

var deviceTokenTests = []test{
	{"a device token is attempted only for its user, before it expires", func(t *testing.T, s fluxauth.Store) {
		u := mustCreateUser(t, s, "device-owner@example.com")
		other := mustCreateUser(t, s, "device-other@example.com")
		dt := newDeviceToken(u.ID, at(0))
		insertDeviceTokens(t, s, dt)
		if attempt(t, s, dt, other.ID, 5, at(time.Hour)) {
			t.Fatal("another user's login was counted on the token")
		}
		if attempt(t, s, &fluxauth.DeviceToken{ID: newID()}, u.ID, 5, at(time.Hour)) {
			t.Fatal("an unknown token was attempted")
		}
		if attempt(t, s, &fluxauth.DeviceToken{ID: "not-a-uuid"}, "nor-this", 5, at(time.Hour)) {
			t.Fatal("an ID the database cannot hold was attempted")
		}
		if attempt(t, s, dt, u.ID, 5, dt.ExpiresAt) {
			t.Fatal("a token was attempted at its expiry")
		}
		if !attempt(t, s, dt, u.ID, 5, dt.ExpiresAt.Add(-time.Microsecond)) {
			t.Fatal("the owner's token was not attempted just before its expiry")
		}
	}},
	{"attempts stop at the budget until a success resets the count and moves the expiry", func(t *testing.T, s fluxauth.Store) {
		u := mustCreateUser(t, s, "device-budget@example.com")
		dt := newDeviceToken(u.ID, at(0))
		insertDeviceTokens(t, s, dt)
		for i := range 3 {
			if !attempt(t, s, dt, u.ID, 3, at(time.Minute)) {
				t.Fatalf("attempt %d of a budget of 3 refused", i+1)
			}
		}
		if attempt(t, s, dt, u.ID, 3, at(time.Minute)) {
			t.Fatal("a fourth attempt was counted on a budget of 3")
		}
		later := dt.ExpiresAt.Add(30 * 24 * time.Hour)
		if !resetDevice(t, s, dt.ID, later) {
			t.Fatal("ResetDeviceToken called a live token dead")
		}
		for i := range 3 {
			if !attempt(t, s, dt, u.ID, 3, dt.ExpiresAt.Add(time.Hour)) {
				t.Fatalf("attempt %d after the reset, past the first expiry, refused", i+1)
			}
		}
	}},
	{"a token with its budget spent ends on a failure, for good", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "device-dies@example.com")
		dt := newDeviceToken(u.ID, at(0))
		insertDeviceTokens(t, s, dt)
		for i := range 4 {
			attempt(t, s, dt, u.ID, 5, at(time.Minute))
			ended, err := s.FailDeviceToken(ctx, dt.ID, 5, at(time.Minute))
			must(t, "FailDeviceToken", err)
			if ended {
				t.Fatalf("failure %d of 5 ended the token", i+1)
			}
		}
		attempt(t, s, dt, u.ID, 5, at(time.Minute))
		ended, err := s.FailDeviceToken(ctx, dt.ID, 5, at(time.Minute))
		if err != nil || !ended {
			t.Fatalf("FailDeviceToken at the fifth failure = %t, %v; want the token ended", ended, err)
		}
		if ended, err := s.FailDeviceToken(ctx, dt.ID, 5, at(time.Minute)); err != nil || ended {
			t.Fatalf("FailDeviceToken of a dead token = %t, %v; want nothing ended", ended, err)
		}
		if resetDevice(t, s, dt.ID, at(time.Hour)) {
			t.Fatal("a success brought a dead token back")
		}
		if attempt(t, s, dt, u.ID, 100, at(time.Hour)) {
			t.Fatal("a dead token was attempted under a larger budget")
		}
	}},
	{"revoking a user's device tokens ends all of theirs and nobody else's", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "device-revoke@example.com")
		other := mustCreateUser(t, s, "device-bystander@example.com")
		mine := []*fluxauth.DeviceToken{newDeviceToken(u.ID, at(0)), newDeviceToken(u.ID, at(time.Second))}
		dead := newDeviceToken(u.ID, at(0))
		dead.DeadAt, dead.DeadReason = at(time.Second), "failures"
		theirs := newDeviceToken(other.ID, at(0))
		insertDeviceTokens(t, s, append(mine, dead, theirs)...)
		update(t, s, func(tx fluxauth.Tx) error {
			n, err := tx.RevokeDeviceTokens(ctx, u.ID, at(time.Minute), "logout_all")
			if err == nil && n != len(mine) {
				err = fmt.Errorf("RevokeDeviceTokens ended %d, want the %d live ones", n, len(mine))
			}
			return err
		})
		for _, dt := range mine {
			if attempt(t, s, dt, u.ID, 5, at(time.Hour)) || resetDevice(t, s, dt.ID, at(time.Hour)) {
				t.Fatal("a revoked token was attempted or reset")
			}
		}
		if !attempt(t, s, theirs, other.ID, 5, at(time.Hour)) {
			t.Fatal("another user's token was revoked too")
		}
		update(t, s, func(tx fluxauth.Tx) error {
			n, err := tx.RevokeDeviceTokens(ctx, "not-a-uuid", at(time.Minute), "logout_all")
			if err == nil && n != 0 {
				err = fmt.Errorf("RevokeDeviceTokens of an impossible user ended %d", n)
			}
			return err
		})
	}},
	{"fifty concurrent attempts count no more than the budget", func(t *testing.T, s fluxauth.Store) {
		u := mustCreateUser(t, s, "device-race@example.com")
		dt := newDeviceToken(u.ID, at(0))
		insertDeviceTokens(t, s, dt)
		var wg sync.WaitGroup
		var granted atomic.Int32
		for range 50 {
			wg.Go(func() {
				ok, err := s.AttemptDeviceToken(context.Background(), dt.ID, u.ID, 5, at(time.Minute))
				if err != nil {
					t.Errorf("AttemptDeviceToken: %v", err)
				}
				if ok {
					granted.Add(1)
				}
			})
		}
		wg.Wait()
		if n := granted.Load(); n != 5 {
			t.Fatalf("%d of 50 concurrent attempts were counted, want 5", n)
		}
	}},
}

// deviceTokenCleanupTests run with the cleanup store's.
var deviceTokenCleanupTests = []storageTest{
	{"device tokens that died or expired before the cutoff are deleted, at most limit at a time", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "device-cleanup@example.com")
		cutoff := at(100 * 24 * time.Hour)
		deadBefore := newDeviceToken(u.ID, at(0))
		deadBefore.DeadAt, deadBefore.DeadReason = cutoff.Add(-time.Second), "failures"
		expiredBefore := newDeviceToken(u.ID, at(0)) // expires at 90 days
		deadAfter := newDeviceToken(u.ID, at(20*24*time.Hour))
		deadAfter.DeadAt, deadAfter.DeadReason = cutoff.Add(time.Second), "logout_all"
		expiringAfter := newDeviceToken(u.ID, at(20*24*time.Hour))
		live := newDeviceToken(u.ID, cutoff)
		insertDeviceTokens(t, s, deadBefore, expiredBefore, deadAfter, expiringAfter, live)

		if n := count(t, "CountDeadDeviceTokens")(s.CountDeadDeviceTokens(ctx, cutoff)); n != 2 {
			t.Fatalf("CountDeadDeviceTokens = %d, want 2", n)
		}
		for i, want := range []int{1, 1, 0} {
			if n := count(t, "DeleteDeadDeviceTokens")(s.DeleteDeadDeviceTokens(ctx, cutoff, 1)); n != want {
				t.Fatalf("batch %d: DeleteDeadDeviceTokens = %d, want %d", i+1, n, want)
			}
		}
		// The three others are still there: a cutoff past all of them would count them.
		if n := count(t, "CountDeadDeviceTokens")(s.CountDeadDeviceTokens(ctx, at(10*365*24*time.Hour))); n != 3 {
			t.Fatalf("CountDeadDeviceTokens far ahead = %d, want the 3 kept", n)
		}
		if !attempt(t, s, live, u.ID, 5, cutoff) {
			t.Fatal("the live token is gone")
		}
	}},
}
