// Package limitertest is the contract every ratelimit.Limiter passes (like testing/fstest): the
// in-process limiter on a fake clock and the Redis limiter on the real server run the same suite, so
// falling back from one to the other never changes what is allowed.
package limitertest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/ratelimit"
)

// Harness is one fresh limiter under test and the means to let time pass for it.
type Harness struct {
	// Limiter holds no keys yet (a Redis limiter gets a unique key prefix per harness).
	Limiter ratelimit.Limiter
	// Wait lets d pass for Limiter: it steps a fake clock, or sleeps for one on real time.
	Wait func(d time.Duration)
	// Tick is the emission interval the refill tests use. On a real clock it must dwarf the time a
	// few calls take; on a fake one any value works.
	Tick time.Duration
	// Slack is how far reported durations may be from exact: 0 on a fake clock, the time a few
	// calls can take on a real one.
	Slack time.Duration
}

// Run runs the contract against the limiters newHarness makes, one per subtest; subtests run in
// parallel.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	hour := time.Hour
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"a fresh key allows exactly the burst, counting remaining down, then denies", func(t *testing.T, h Harness) {
			l := ratelimit.Limit{Rate: 5, Period: hour, Burst: 5}
			interval := hour / 5
			for i := range 5 {
				r := mustAllow(t, h, "k", l)
				want(t, h, r, ratelimit.Result{Allowed: true, Limit: 5, Remaining: 4 - i, ResetAfter: time.Duration(i+1) * interval})
			}
			for range 3 { // denials consume nothing
				r := mustAllow(t, h, "k", l)
				want(t, h, r, ratelimit.Result{Allowed: false, Limit: 5, Remaining: 0, RetryAfter: interval, ResetAfter: 5 * interval})
			}
		}},
		{"burst defaults to the rate", func(t *testing.T, h Harness) {
			if n := countAllowed(t, h, "k", ratelimit.Limit{Rate: 3, Period: hour}, 10); n != 3 {
				t.Fatalf("allowed %d of 10, want 3", n)
			}
		}},
		{"a burst above the rate allows the burst, then one event per interval", func(t *testing.T, h Harness) {
			l := ratelimit.Limit{Rate: 7, Period: time.Minute, Burst: 10}
			if n := countAllowed(t, h, "k", l, 20); n != 10 {
				t.Fatalf("allowed %d of 20, want 10", n)
			}
			interval := (time.Minute / 7).Truncate(time.Microsecond) // limiters count in microseconds
			r := mustAllow(t, h, "k", l)
			want(t, h, r, ratelimit.Result{Limit: 10, RetryAfter: interval, ResetAfter: 10 * interval})
		}},
		{"keys are independent", func(t *testing.T, h Harness) {
			l := ratelimit.Limit{Rate: 2, Period: hour}
			countAllowed(t, h, "login:ip:10.0.0.1", l, 5)
			if n := countAllowed(t, h, "login:ip:10.0.0.2", l, 5); n != 2 {
				t.Fatalf("second key allowed %d of 5, want 2", n)
			}
		}},
		{"an exhausted key refills one event per interval, and fully after the period", func(t *testing.T, h Harness) {
			l := ratelimit.Limit{Rate: 2, Period: 2 * h.Tick}
			countAllowed(t, h, "k", l, 2)
			r := mustAllow(t, h, "k", l)
			if r.Allowed {
				t.Fatal("allowed a third event within the interval")
			}
			near(t, "RetryAfter", r.RetryAfter, h.Tick, h.Slack)
			h.Wait(r.RetryAfter + h.Slack)
			r = mustAllow(t, h, "k", l)
			if !r.Allowed || r.Remaining != 0 {
				t.Fatalf("after one interval: %+v, want allowed with 0 remaining", r)
			}
			if r = mustAllow(t, h, "k", l); r.Allowed {
				t.Fatal("allowed two events after one interval")
			}
			h.Wait(2*h.Tick + h.Slack)
			if n := countAllowed(t, h, "k", l, 5); n != 2 {
				t.Fatalf("after a full period allowed %d of 5, want 2", n)
			}
		}},
		{"reset forgets what a key consumed", func(t *testing.T, h Harness) {
			ctx := context.Background()
			l := ratelimit.Limit{Rate: 3, Period: hour}
			countAllowed(t, h, "k", l, 3)
			if err := h.Limiter.Reset(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			if n := countAllowed(t, h, "k", l, 5); n != 3 {
				t.Fatalf("after reset allowed %d of 5, want 3", n)
			}
			if err := h.Limiter.Reset(ctx, "never-used"); err != nil {
				t.Fatalf("reset of an unknown key: %v", err)
			}
		}},
		{"peek reports the budget without consuming it", func(t *testing.T, h Harness) {
			l := ratelimit.Limit{Rate: 4, Period: hour}
			interval := hour / 4
			want(t, h, mustPeek(t, h, "k", l), ratelimit.Result{Allowed: true, Limit: 4, Remaining: 4})
			countAllowed(t, h, "k", l, 1)
			want(t, h, mustPeek(t, h, "k", l), ratelimit.Result{Allowed: true, Limit: 4, Remaining: 3, ResetAfter: interval})
			want(t, h, mustPeek(t, h, "k", l), ratelimit.Result{Allowed: true, Limit: 4, Remaining: 3, ResetAfter: interval})
			countAllowed(t, h, "k", l, 3)
			want(t, h, mustPeek(t, h, "k", l), ratelimit.Result{Limit: 4, RetryAfter: interval, ResetAfter: 4 * interval})
			if r := mustAllow(t, h, "k", l); r.Allowed {
				t.Fatal("allowed past the burst after peeking")
			}
		}},
		{"50 parallel calls on one key allow exactly the burst", func(t *testing.T, h Harness) {
			n := parallel(t, 50, func() bool {
				r, err := h.Limiter.Allow(context.Background(), "hot", ratelimit.Limit{Rate: 10, Period: hour})
				if err != nil {
					t.Error(err) // not Fatal: this runs off the test goroutine
				}
				return r.Allowed
			})
			if n != 10 {
				t.Fatalf("allowed %d of 50 parallel calls, want 10", n)
			}
		}},
		{"AllowAll charges every key in order while each allows", func(t *testing.T, h Harness) {
			wide, narrow := ratelimit.Limit{Rate: 5, Period: hour}, ratelimit.Limit{Rate: 2, Period: hour}
			checks := []ratelimit.Check{{Key: "ip", Limit: wide}, {Key: "off", Limit: ratelimit.Limit{}}, {Key: "session", Limit: narrow}}
			for i := range 2 {
				res := mustAllowAll(t, h, checks...)
				if len(res) != 3 {
					t.Fatalf("call %d: %d results, want 3", i, len(res))
				}
				want(t, h, res[0], ratelimit.Result{Allowed: true, Limit: 5, Remaining: 4 - i, ResetAfter: time.Duration(i+1) * hour / 5})
				want(t, h, res[1], ratelimit.Result{Allowed: true})
				want(t, h, res[2], ratelimit.Result{Allowed: true, Limit: 2, Remaining: 1 - i, ResetAfter: time.Duration(i+1) * hour / 2})
			}
			// The third call is refused by the last key, after the first was charged (as Allow in
			// turn would have done).
			res := mustAllowAll(t, h, checks...)
			if len(res) != 3 || !res[0].Allowed || res[2].Allowed {
				t.Fatalf("third call: %+v, want the first allowed and the last refused", res)
			}
			if r := mustPeek(t, h, "ip", wide); r.Remaining != 2 {
				t.Fatalf("first key has %d left, want 2 (charged on all three calls)", r.Remaining)
			}
		}},
		{"AllowAll stops at the first refusal and charges nothing after it", func(t *testing.T, h Harness) {
			first, second := ratelimit.Limit{Rate: 1, Period: hour}, ratelimit.Limit{Rate: 3, Period: hour}
			countAllowed(t, h, "ip", first, 1)
			res := mustAllowAll(t, h, ratelimit.Check{Key: "ip", Limit: first}, ratelimit.Check{Key: "session", Limit: second})
			if len(res) != 1 || res[0].Allowed {
				t.Fatalf("got %+v, want one refused result", res)
			}
			want(t, h, res[0], ratelimit.Result{Limit: 1, RetryAfter: hour, ResetAfter: hour})
			if r := mustPeek(t, h, "session", second); r.Remaining != 3 {
				t.Fatalf("the key after the refusal has %d left, want 3 (uncharged)", r.Remaining)
			}
		}},
		{"50 parallel AllowAll calls on shared keys allow exactly the tighter budget", func(t *testing.T, h Harness) {
			checks := []ratelimit.Check{{Key: "a", Limit: ratelimit.Limit{Rate: 30, Period: hour}}, {Key: "b", Limit: ratelimit.Limit{Rate: 10, Period: hour}}}
			n := parallel(t, 50, func() bool {
				res, err := h.Limiter.AllowAll(context.Background(), checks...)
				if err != nil {
					t.Error(err) // not Fatal: this runs off the test goroutine
					return false
				}
				return len(res) == 2 && res[1].Allowed
			})
			if n != 10 {
				t.Fatalf("allowed %d of 50 parallel calls, want 10", n)
			}
		}},
		{"the zero limit allows everything and sends no limit", func(t *testing.T, h Harness) {
			for range 20 {
				want(t, h, mustAllow(t, h, "k", ratelimit.Limit{}), ratelimit.Result{Allowed: true})
			}
		}},
		{"an invalid limit is an error", func(t *testing.T, h Harness) {
			for _, l := range []ratelimit.Limit{{Rate: -1, Period: hour}, {Rate: 1}, {Rate: 1, Period: hour, Burst: -1}, {Rate: 10, Period: time.Microsecond}} {
				if _, err := h.Limiter.Allow(context.Background(), "k", l); err == nil {
					t.Errorf("Allow with %+v: no error", l)
				}
			}
		}},
		{"50 parallel wrong-password attempts verify no more passwords than the lockout burst", func(t *testing.T, h Harness) {
			lo := ratelimit.Lockout{Limiter: h.Limiter, Limit: ratelimit.Limit{Rate: 1, Period: 15 * time.Minute, Burst: 10}}
			key := ratelimit.Key("lockout:email", "jane@example.com")
			verified := parallel(t, 50, func() bool {
				r, err := lo.Attempt(context.Background(), key)
				if err != nil {
					t.Error(err) // not Fatal: this runs off the test goroutine
				}
				return r.Allowed // only then would the password be verified (and found wrong)
			})
			if verified != 10 {
				t.Fatalf("verified %d of 50 wrong passwords, want 10", verified)
			}
			// A refused attempt takes nothing, so the next one is refused for exactly one interval.
			r, err := lo.Attempt(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			want(t, h, r, ratelimit.Result{Limit: 10, RetryAfter: 15 * time.Minute, ResetAfter: 150 * time.Minute})
		}},
		{"a successful login clears the failed attempts", func(t *testing.T, h Harness) {
			ctx := context.Background()
			lo := ratelimit.Lockout{Limiter: h.Limiter, Limit: ratelimit.Limit{Rate: 1, Period: 15 * time.Minute, Burst: 10}}
			key := ratelimit.Key("lockout:email", "jane@example.com")
			for range 9 {
				if r, err := lo.Attempt(ctx, key); err != nil || !r.Allowed {
					t.Fatalf("attempt before the lock: %+v, %v", r, err)
				}
			}
			if err := lo.Reset(ctx, key); err != nil { // the tenth attempt had the right password
				t.Fatal(err)
			}
			for range 10 {
				if r, err := lo.Attempt(ctx, key); err != nil || !r.Allowed {
					t.Fatalf("attempt after a successful login: %+v, %v", r, err)
				}
			}
			if r, _ := lo.Attempt(ctx, key); r.Allowed {
				t.Fatal("eleventh failure in a row was allowed")
			}
		}},
		{"a locked key gets one more attempt per interval", func(t *testing.T, h Harness) {
			ctx := context.Background()
			lo := ratelimit.Lockout{Limiter: h.Limiter, Limit: ratelimit.Limit{Rate: 1, Period: h.Tick, Burst: 3}}
			for range 3 {
				lo.Attempt(ctx, "acct")
			}
			r, err := lo.Attempt(ctx, "acct")
			if err != nil || r.Allowed {
				t.Fatalf("after 3 failures: %+v, %v; want locked", r, err)
			}
			near(t, "RetryAfter", r.RetryAfter, h.Tick, h.Slack)
			h.Wait(r.RetryAfter + h.Slack)
			if r, _ := lo.Attempt(ctx, "acct"); !r.Allowed {
				t.Fatalf("no attempt allowed after the lock: %+v", r)
			}
			if r, _ := lo.Attempt(ctx, "acct"); r.Allowed {
				t.Fatal("two attempts allowed after one interval")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newHarness(t))
		})
	}
}

func mustAllow(tb testing.TB, h Harness, key string, l ratelimit.Limit) ratelimit.Result {
	tb.Helper()
	r, err := h.Limiter.Allow(context.Background(), key, l)
	if err != nil {
		tb.Fatalf("Allow(%q, %v): %v", key, l, err)
	}
	return r
}

func mustAllowAll(tb testing.TB, h Harness, checks ...ratelimit.Check) []ratelimit.Result {
	tb.Helper()
	res, err := h.Limiter.AllowAll(context.Background(), checks...)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func mustPeek(tb testing.TB, h Harness, key string, l ratelimit.Limit) ratelimit.Result {
	tb.Helper()
	r, err := h.Limiter.Peek(context.Background(), key, l)
	if err != nil {
		tb.Fatalf("Peek(%q, %v): %v", key, l, err)
	}
	return r
}

// countAllowed makes n calls on key and returns how many were allowed.
func countAllowed(tb testing.TB, h Harness, key string, l ratelimit.Limit, n int) int {
	tb.Helper()
	allowed := 0
	for range n {
		if mustAllow(tb, h, key, l).Allowed {
			allowed++
		}
	}
	return allowed
}

// parallel runs fn n times at once, released together, and returns how many returned true.
func parallel(tb testing.TB, n int, fn func() bool) int {
	tb.Helper()
	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		allowed atomic.Int64
	)
	for range n {
		wg.Go(func() {
			<-start
			if fn() {
				allowed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(allowed.Load())
}

// want compares got with w: counts exactly, durations within h.Slack below the exact value (time
// passes on a real clock between the call and the check, so reported waits only shrink).
func want(tb testing.TB, h Harness, got, w ratelimit.Result) {
	tb.Helper()
	if got.Allowed != w.Allowed || got.Limit != w.Limit || got.Remaining != w.Remaining {
		tb.Fatalf("got %+v, want %+v", got, w)
	}
	near(tb, "RetryAfter", got.RetryAfter, w.RetryAfter, h.Slack)
	near(tb, "ResetAfter", got.ResetAfter, w.ResetAfter, h.Slack)
}

func near(tb testing.TB, what string, got, want, slack time.Duration) {
	tb.Helper()
	if got > want || got < want-slack {
		tb.Fatalf("%s = %v, want %v (less at most %v)", what, got, want, slack)
	}
}
