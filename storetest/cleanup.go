package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// The cleanup job's own tests run it end to end over many rows; these pin down what each
// CleanupStore method selects, counts and leaves, at the edges of its cutoff.

// count takes a (count, error) result inline, failing tb when the error is set:
// count(t, "CountDeadTokens")(s.CountDeadTokens(ctx, cutoff)).
func count(tb testing.TB, what string) func(n int, err error) int {
	return func(n int, err error) int {
		tb.Helper()
		must(tb, what, err)
		return n
	}
}

// wantTokens fails tb unless each token is still stored (kept) or gone (!kept).
func wantTokens(tb testing.TB, s fluxauth.Backend, kept bool, what string, tokens ...*fluxauth.RefreshToken) {
	tb.Helper()
	for _, rt := range tokens {
		_, err := tokenByHash(s, rt.TokenHash)
		switch {
		case kept && err != nil:
			tb.Errorf("%s: token %s is gone: %v", what, rt.ID, err)
		case !kept && !errors.Is(err, fluxauth.ErrNotFound):
			tb.Errorf("%s: token %s is still there (%v)", what, rt.ID, err)
		}
	}
}

// chain returns a session of two tokens: a root spent into a tip, the root expiring at rootExpires
// and the tip at tipExpires.
func chain(rootExpires, tipExpires time.Time) (root, tip *fluxauth.RefreshToken) {
	root = newToken(newID(), at(0))
	tip = childOf(root, at(time.Hour))
	root.SpentAt, root.ExpiresAt = at(time.Hour), rootExpires
	tip.ExpiresAt = tipExpires
	return root, tip
}

var cleanupTests = []storageTest{
	{"dead tokens are those revoked before the cutoff or expired before it with nothing live left", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		cutoff := at(100 * 24 * time.Hour)
		expiring := func(expires time.Time) *fluxauth.RefreshToken {
			rt := newToken(newID(), at(0))
			rt.ExpiresAt = expires
			return rt
		}
		revoked := func(when time.Time) *fluxauth.RefreshToken {
			rt := expiring(cutoff.Add(24 * time.Hour)) // unexpired: only the revocation can make it dead
			rt.RevokedAt, rt.RevokeReason = when, "logout"
			return rt
		}
		// A spent token with no successor is not live, so only its own expiry decides.
		spent := func(expires time.Time) *fluxauth.RefreshToken {
			rt := expiring(expires)
			rt.SpentAt = at(time.Hour)
			return rt
		}
		// A session live at the cutoff keeps the expired links of its chain, so that one presented
		// is answered as expired rather than unknown; its tip, expiring at the cutoff, is live then.
		liveRoot, liveTip := chain(cutoff.Add(-time.Hour), cutoff)
		// A session whose tip expired too is dead whole.
		deadRoot, deadTip := chain(cutoff.Add(-2*time.Hour), cutoff.Add(-time.Microsecond))
		dead := []*fluxauth.RefreshToken{
			revoked(cutoff.Add(-time.Microsecond)),
			expiring(cutoff.Add(-time.Microsecond)),
			spent(cutoff.Add(-time.Microsecond)),
			deadRoot, deadTip,
		}
		kept := []*fluxauth.RefreshToken{
			revoked(cutoff),                // the cutoff is exclusive
			revoked(cutoff.Add(time.Hour)), // revoked within retention
			expiring(cutoff),               // expired at the cutoff, and live until then
			spent(cutoff),                  // expired at the cutoff
			expiring(cutoff.Add(time.Hour)),
			liveRoot, liveTip,
		}
		insertTokens(t, s, append(dead, kept...)...)

		if n := count(t, "CountDeadTokens")(s.CountDeadTokens(ctx, cutoff)); n != len(dead) {
			t.Fatalf("CountDeadTokens = %d, want %d", n, len(dead))
		}
		if n := count(t, "DeleteDeadTokens")(s.DeleteDeadTokens(ctx, cutoff, 100)); n != len(dead) {
			t.Fatalf("DeleteDeadTokens = %d, want %d", n, len(dead))
		}
		wantTokens(t, s, false, "dead", dead...)
		wantTokens(t, s, true, "kept", kept...)
		if n := count(t, "CountDeadTokens")(s.CountDeadTokens(ctx, cutoff)); n != 0 {
			t.Fatalf("CountDeadTokens after the delete = %d, want 0", n)
		}
	}},
	{"dead tokens are deleted at most limit at a time", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		cutoff := at(100 * 24 * time.Hour)
		var dead []*fluxauth.RefreshToken
		for range 5 {
			rt := newToken(newID(), at(0)) // expired after 30 days
			dead = append(dead, rt)
		}
		live := newToken(newID(), cutoff)
		insertTokens(t, s, append(dead, live)...)
		for i, want := range []int{2, 2, 1, 0} {
			if n := count(t, "DeleteDeadTokens")(s.DeleteDeadTokens(ctx, cutoff, 2)); n != want {
				t.Fatalf("batch %d: DeleteDeadTokens = %d, want %d", i+1, n, want)
			}
			if n, left := count(t, "CountDeadTokens")(s.CountDeadTokens(ctx, cutoff)), 5-min(5, 2*(i+1)); n != left {
				t.Fatalf("batch %d: CountDeadTokens = %d, want %d", i+1, n, left)
			}
		}
		wantTokens(t, s, false, "dead", dead...)
		wantTokens(t, s, true, "live", live)
	}},
	{"events before the cutoff are counted and deleted at most limit at a time", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		cutoff := at(90 * 24 * time.Hour)
		var old []*fluxauth.SecurityEvent
		for _, d := range []time.Duration{-48 * time.Hour, -time.Second, -time.Microsecond} {
			old = append(old, newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, "", "192.0.2.1", cutoff.Add(d)))
		}
		atCutoff := newEvent(fluxauth.EventSignup, fluxauth.SeverityInfo, newID(), "", cutoff) // the cutoff is exclusive
		recent := newEvent(fluxauth.EventLoginSuccess, fluxauth.SeverityInfo, newID(), "", cutoff.Add(time.Hour))
		insertEvents(t, s, append(old, atCutoff, recent)...)

		if n := count(t, "CountEventsBefore")(s.CountEventsBefore(ctx, cutoff)); n != len(old) {
			t.Fatalf("CountEventsBefore = %d, want %d", n, len(old))
		}
		for i, want := range []int{2, 1, 0} {
			if n := count(t, "DeleteEventsBefore")(s.DeleteEventsBefore(ctx, cutoff, 2)); n != want {
				t.Fatalf("batch %d: DeleteEventsBefore = %d, want %d", i+1, n, want)
			}
		}
		if n := count(t, "CountEventsBefore")(s.CountEventsBefore(ctx, cutoff)); n != 0 {
			t.Fatalf("CountEventsBefore after the deletes = %d, want 0", n)
		}
		sameIDs(t, "events left", eventIDs(listEvents(t, s, fluxauth.EventFilter{})), []string{recent.ID, atCutoff.ID})
	}},
	{"an exclusive job runs its function unless its name is held, and releases the name", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		var ran []string
		ok, err := s.TryExclusive(ctx, "cleanup", func(ctx context.Context) error {
			ran = append(ran, "cleanup")
			ok, err := s.TryExclusive(ctx, "cleanup", func(context.Context) error {
				ran = append(ran, "cleanup while held")
				return nil
			})
			if ok || err != nil {
				t.Errorf("TryExclusive of a held name = %v, %v; want false, nil", ok, err)
			}
			ok, err = s.TryExclusive(ctx, "keys", func(context.Context) error {
				ran = append(ran, "keys")
				return nil
			})
			if !ok || err != nil {
				t.Errorf("TryExclusive of another name while one is held = %v, %v; want true, nil", ok, err)
			}
			return nil
		})
		if !ok || err != nil {
			t.Fatalf("TryExclusive = %v, %v; want true, nil", ok, err)
		}
		sameIDs(t, "functions run", ran, []string{"cleanup", "keys"})
		// Released means released for every other holder: take the name again from inside another
		// job, which in a store of connections holds a connection of its own meanwhile.
		wantFree := func(when string) {
			t.Helper()
			var taken bool
			_, err := s.TryExclusive(ctx, "keys", func(ctx context.Context) error {
				var err error
				taken, err = s.TryExclusive(ctx, "cleanup", func(context.Context) error { return nil })
				return err
			})
			if !taken || err != nil {
				t.Fatalf("%s: TryExclusive = %v, %v; want the name released", when, taken, err)
			}
		}
		wantFree("after a job")

		ok, err = s.TryExclusive(ctx, "cleanup", func(context.Context) error { return errBoom })
		if !ok || !errors.Is(err, errBoom) {
			t.Fatalf("TryExclusive of a failing function = %v, %v; want true and its error", ok, err)
		}
		wantFree("after a failed job")
	}},
}
