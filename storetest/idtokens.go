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
	{"of thirty concurrent transactions using one ID token exactly one records it", func(t *testing.T, s fluxauth.Backend) {
		const n = 30
		u := newUse("google")
		var wg sync.WaitGroup
		oks := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = s.Update(context.Background(), func(tx fluxauth.Tx) error {
					var err error
					oks[i], err = tx.UseIDToken(context.Background(), u)
					return err
				})
			})
		}
		wg.Wait()
		won := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Update %d: %v", i, errs[i])
			}
			if oks[i] {
				won++
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent uses of one token were recorded, want 1", won, n)
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
