package revocation_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/revocation"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// countingChecker counts the database lookups a list makes and can hold them until released.
type countingChecker struct {
	revocation.Checker
	queries atomic.Int64
	started chan struct{} // if set, told of each lookup as it starts
	release chan struct{} // if set, lookups wait for it to close (or their context to end)
}

func (c *countingChecker) SessionRevoked(ctx context.Context, sessionID string) (bool, string, error) {
	c.queries.Add(1)
	if c.started != nil {
		c.started <- struct{}{}
	}
	if c.release != nil {
		select {
		case <-c.release:
		case <-ctx.Done():
			return false, "", ctx.Err()
		}
	}
	return c.Checker.SessionRevoked(ctx, sessionID)
}

func TestOwnerIsCachedAfterOneLookupSharedWithTheRevocationCheck(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	sid := session(t, store, clock.Now())
	cc := &countingChecker{Checker: store}
	d := revocation.NewDB(cc, 500*time.Millisecond, clock)
	if revoked, err := d.IsRevoked(ctx, sid); err != nil || revoked {
		t.Fatalf("IsRevoked: %v %v", revoked, err)
	}
	for i := 0; i < 3; i++ {
		clock.Advance(time.Hour) // long past the revocation cache: the owner does not expire
		owner, err := d.Owner(ctx, sid)
		if err != nil || owner != "u1" {
			t.Fatalf("Owner = %q, %v; want u1", owner, err)
		}
	}
	if n := cc.queries.Load(); n != 1 {
		t.Fatalf("%d database lookups, want 1 (the revocation check's, which fills the owner cache)", n)
	}
}

func TestOwnerOfAnUnknownSessionIsNotFound(t *testing.T) {
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	d := revocation.NewDB(store, time.Minute, clock)
	if _, err := d.Owner(context.Background(), uuid.NewString()); !errors.Is(err, fluxauth.ErrNotFound) {
		t.Fatalf("Owner of an unknown session: %v, want ErrNotFound", err)
	}
}

func TestOwnerCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	a, b := session(t, store, clock.Now()), session(t, store, clock.Now())
	cc := &countingChecker{Checker: store}
	d := revocation.NewDB(cc, 0, clock)
	d.OwnerCacheSize = 1
	for _, sid := range []string{a, b, a} {
		if _, err := d.Owner(ctx, sid); err != nil {
			t.Fatal(err)
		}
	}
	if n := cc.queries.Load(); n != 3 {
		t.Fatalf("%d lookups, want 3: a cache of one owner must have dropped a for b", n)
	}
}

func TestConcurrentMissesForOneSessionShareOneQuery(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	sid := session(t, store, clock.Now())
	cc := &countingChecker{Checker: store, started: make(chan struct{}, 64), release: make(chan struct{})}
	d := revocation.NewDB(cc, time.Minute, clock)
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			revoked, err := d.IsRevoked(ctx, sid)
			if err == nil && revoked {
				err = errors.New("live session reported revoked")
			}
			errs <- err
		}()
	}
	<-cc.started // the first lookup is under way, and held
	// A second lookup must never start; without a shared flight the other callers start theirs at
	// once, so a short wait is enough to see one (and waiting longer proves nothing more).
	select {
	case <-cc.started:
		t.Fatal("a second database lookup started while the first was under way")
	case <-time.After(200 * time.Millisecond):
	}
	close(cc.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if q := cc.queries.Load(); q != 1 {
		t.Fatalf("%d lookups for %d concurrent misses, want 1", q, n)
	}
}

func TestACallerHangingUpDoesNotFailTheSharedLookup(t *testing.T) {
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	sid := session(t, store, clock.Now())
	cc := &countingChecker{Checker: store, started: make(chan struct{}, 4), release: make(chan struct{})}
	d := revocation.NewDB(cc, time.Minute, clock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := d.IsRevoked(ctx, sid)
		done <- err
	}()
	<-cc.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that hung up got %v, want context.Canceled", err)
	}
	close(cc.release)
	// The lookup carried on for everyone else: Owner either joins it, if it is still running, or
	// finds its answer cached; either way no second lookup is made.
	if owner, err := d.Owner(context.Background(), sid); err != nil || owner != "u1" {
		t.Fatalf("Owner after the shared lookup: %q %v", owner, err)
	}
	if revoked, err := d.IsRevoked(context.Background(), sid); err != nil || revoked {
		t.Fatalf("IsRevoked: %v %v", revoked, err)
	}
	if q := cc.queries.Load(); q != 1 {
		t.Fatalf("%d lookups, want 1: the lookup died with the caller that started it", q)
	}
}

func TestARevocationAnnouncedDuringALookupIsNotOverwrittenByItsAnswer(t *testing.T) {
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	sid := session(t, store, clock.Now())
	cc := &countingChecker{Checker: store, started: make(chan struct{}, 4), release: make(chan struct{})}
	d := revocation.NewDB(cc, time.Minute, clock)
	done := make(chan bool, 1)
	go func() {
		revoked, _ := d.IsRevoked(context.Background(), sid)
		done <- revoked
	}()
	<-cc.started // the lookup has read nothing yet; it will find the session live
	if err := d.Announce(context.Background(), sid, clock.Now().Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	close(cc.release)
	<-done
	if revoked, err := d.IsRevoked(context.Background(), sid); err != nil || !revoked {
		t.Fatalf("after the announcement: revoked %v, %v; the older lookup's answer replaced it", revoked, err)
	}
}
