package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// newUse returns the use of a fresh ID token of provider, used at t0 and expiring an hour later.
func newUse(provider string) *fluxauth.IDTokenUse {
	return &fluxauth.IDTokenUse{Provider: provider, Key: hashOf(newID()), UsedAt: at(0), ExpiresAt: at(time.Hour)}
}

// useIDToken records u in a transaction of its own and returns whether it was the first use.
func useIDToken(tb testing.TB, s fluxauth.Store, u *fluxauth.IDTokenUse) bool {
	tb.Helper()
	var ok bool
	update(tb, s, func(tx fluxauth.Tx) error {
		var err error
		ok, err = tx.UseIDToken(context.Background(), u)
		return err
	})
	return ok
}

// readUse reads the recorded use of (provider, key) in a transaction of its own.
func readUse(tb testing.TB, s fluxauth.Store, provider, key string) *fluxauth.IDTokenUse {
	tb.Helper()
	var u *fluxauth.IDTokenUse
	update(tb, s, func(tx fluxauth.Tx) error {
		var err error
		u, err = tx.IDTokenUse(context.Background(), provider, key)
		return err
	})
	return u
}

var idTokenTests = []storageTest{
	{"an ID token's use is recorded once per provider", func(t *testing.T, s fluxauth.Backend) {
		u := newUse("google")
		if !useIDToken(t, s, u) {
			t.Fatal("first use of a token refused")
		}
		again := *u
		again.UsedAt, again.ExpiresAt = at(time.Minute), at(2*time.Hour) // only (provider, key) count
		if useIDToken(t, s, &again) {
			t.Fatal("second use of a token recorded")
		}
		other := *u
		other.Provider = "apple"
		if !useIDToken(t, s, &other) {
			t.Fatal("the same key from another provider refused")
		}
		if !useIDToken(t, s, newUse("google")) {
			t.Fatal("another token of the provider refused")
		}
	}},
	{"a use in a transaction that rolls back is not recorded", func(t *testing.T, s fluxauth.Backend) {
		u := newUse("apple")
		err := s.Update(context.Background(), func(tx fluxauth.Tx) error {
			if ok, err := tx.UseIDToken(context.Background(), u); !ok || err != nil {
				return fmt.Errorf("UseIDToken = %v, %v", ok, err)
			}
			return errBoom
		})
		wantErr(t, "Update", err, errBoom)
		if !useIDToken(t, s, u) {
			t.Fatal("a use that was rolled back still counts")
		}
	}},
	{"a recorded use is read back with the session it opened; an unrecorded one is not found", func(t *testing.T, s fluxauth.Backend) {
		withSession, plain := newUse("legacy"), newUse("google")
		withSession.SessionID = newID()
		for _, u := range []*fluxauth.IDTokenUse{withSession, plain} {
			if !useIDToken(t, s, u) {
				t.Fatal("first use of a token refused")
			}
			got := readUse(t, s, u.Provider, u.Key)
			equal(t, "the recorded use", got, u)
		}
		update(t, s, func(tx fluxauth.Tx) error {
			_, err := tx.IDTokenUse(context.Background(), "google", withSession.Key) // another provider's key
			wantErr(t, "IDTokenUse of an unrecorded use", err, fluxauth.ErrNotFound)
			return nil
		})
	}},
	{"of thirty concurrent transactions using one ID token exactly one records it, and the others read its use", func(t *testing.T, s fluxauth.Backend) {
		const n = 30
		key := newUse("legacy").Key
		var wg sync.WaitGroup
		uses := make([]*fluxauth.IDTokenUse, n)
		oks := make([]bool, n)
		read := make([]*fluxauth.IDTokenUse, n)
		errs := make([]error, n)
		for i := range n {
			uses[i] = &fluxauth.IDTokenUse{Provider: "legacy", Key: key, UsedAt: at(time.Duration(i) * time.Second), ExpiresAt: at(time.Hour), SessionID: newID()}
			wg.Go(func() {
				errs[i] = s.Update(context.Background(), func(tx fluxauth.Tx) error {
					var err error
					if oks[i], err = tx.UseIDToken(context.Background(), uses[i]); err != nil || oks[i] {
						return err
					}
					read[i], err = tx.IDTokenUse(context.Background(), "legacy", key)
					return err
				})
			})
		}
		wg.Wait()
		winner := -1
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Update %d: %v", i, errs[i])
			}
			if oks[i] {
				if winner >= 0 {
					t.Fatalf("uses %d and %d of one token were both recorded", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("none of %d concurrent uses of one token was recorded", n)
		}
		for i := range n {
			if i != winner {
				equal(t, fmt.Sprintf("the use transaction %d read", i), read[i], uses[winner])
			}
		}
	}},
	{"uses of ID tokens expired before the cutoff are counted and deleted at most limit at a time", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		cutoff := at(24 * time.Hour)
		var expired []*fluxauth.IDTokenUse
		for _, d := range []time.Duration{-time.Hour, -time.Second, -time.Microsecond} {
			u := newUse("google")
			u.ExpiresAt = cutoff.Add(d)
			expired = append(expired, u)
		}
		atCutoff, live := newUse("apple"), newUse("google")
		atCutoff.ExpiresAt, live.ExpiresAt = cutoff, cutoff.Add(time.Hour) // the cutoff is exclusive
		for _, u := range append(expired, atCutoff, live) {
			if !useIDToken(t, s, u) {
				t.Fatal("a fresh use was refused")
			}
		}
		if n, err := s.CountIDTokenUsesBefore(ctx, cutoff); n != len(expired) || err != nil {
			t.Fatalf("CountIDTokenUsesBefore = %d, %v; want %d", n, err, len(expired))
		}
		for i, want := range []int{2, 1, 0} {
			if n, err := s.DeleteIDTokenUsesBefore(ctx, cutoff, 2); n != want || err != nil {
				t.Fatalf("batch %d: DeleteIDTokenUsesBefore = %d, %v; want %d", i+1, n, err, want)
			}
		}
		if n, err := s.CountIDTokenUsesBefore(ctx, cutoff); n != 0 || err != nil {
			t.Fatalf("CountIDTokenUsesBefore after the deletes = %d, %v; want 0", n, err)
		}
		// What was deleted can be used again (its token is refused as expired before that matters);
		// what was kept cannot.
		for _, u := range expired {
			if !useIDToken(t, s, u) {
				t.Fatal("a deleted use still counts")
			}
		}
		for _, u := range []*fluxauth.IDTokenUse{atCutoff, live} {
			if useIDToken(t, s, u) {
				t.Fatalf("the use of a token expiring at %v was deleted", u.ExpiresAt)
			}
		}
	}},
}

var idTokenLockTests = []backendTest{
	{"a use recorded by a running transaction makes another wait for its end", func(t *testing.T, b Backend) {
		// The first transaction records the use and holds until the second is seen waiting; the
		// second then gets false if the first commits, and true if it rolls back.
		for _, commit := range []bool{true, false} {
			t.Run(fmt.Sprintf("commit=%v", commit), func(t *testing.T) {
				ctx := context.Background()
				u := newUse("google")
				var ok bool
				secondWaitsForFirstThen(t, b, commit, func(tx fluxauth.Tx) error {
					if ok, err := tx.UseIDToken(ctx, u); !ok || err != nil {
						return fmt.Errorf("first UseIDToken = %v, %v", ok, err)
					}
					return nil
				}, func(tx fluxauth.Tx, _ func()) error {
					var err error
					ok, err = tx.UseIDToken(ctx, u)
					return err
				})
				if ok != !commit {
					t.Fatalf("second use after the first %s: ok = %v, want %v", map[bool]string{true: "committed", false: "rolled back"}[commit], ok, !commit)
				}
			})
		}
	}},
}
