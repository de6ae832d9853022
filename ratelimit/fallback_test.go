package ratelimit_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/breaker"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func isUnavailable(err error) bool { return errors.Is(err, fluxauth.ErrUnavailable) }

// instance is one fluxauth instance's limiter: Redis at url, falling back to its own memory.
type instance struct {
	*ratelimit.Fallback
	log   *logRecorder
	calls *atomic.Int64 // commands sent to Redis, pipelines counted once
}

// newInstance builds an instance whose Redis calls are bounded by timeout. A test about the timeout
// itself uses the production default; one about recovery uses a timeout no slow call on a loaded
// machine reaches, so that only the outage it makes trips the breaker.
func newInstance(tb testing.TB, url, prefix string, clock fluxauth.Clock, timeout time.Duration) instance {
	tb.Helper()
	rec := &logRecorder{}
	rdb := mustRedisClient(tb, url)
	calls := &atomic.Int64{}
	rdb.AddHook(countingHook{calls})
	shared := ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: prefix, Timeout: timeout})
	b := breaker.New(breaker.Config{Name: "redis", Timeout: timeout, Clock: clock, Logger: slog.New(rec)})
	return instance{ratelimit.NewFallback(shared, ratelimit.NewMemory(clock), b), rec, calls}
}

// countingHook counts the commands a Redis client sends.
type countingHook struct{ n *atomic.Int64 }

func (countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// newBreaker is a breaker with the defaults, on clock.
func newBreaker(clock fluxauth.Clock) *breaker.Breaker {
	return breaker.New(breaker.Config{Name: "redis", Clock: clock, Logger: discardLogger()})
}

// awaitRecovery steps the clock a probe interval at a time until f uses Redis again. Real time
// passes too: the Redis client re-dials a restarted server on its own schedule.
func awaitRecovery(tb testing.TB, f *ratelimit.Fallback, clock *testenv.Clock) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.Degraded() {
		if time.Now().After(deadline) {
			tb.Fatal("still degraded 10s after Redis came back")
		}
		clock.Advance(breaker.DefaultProbeEvery)
		if _, err := f.Allow(context.Background(), "probe", ratelimit.Limit{Rate: 1000, Period: time.Second}); err != nil {
			tb.Fatal(err)
		}
		if f.Degraded() {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestFallbackServesFromMemoryAndWarnsOnceAMinuteWhileRedisIsUnreachable(t *testing.T) {
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	closed := "redis://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/0"
	f := newInstance(t, closed, "fluxauth:rl:", clock, ratelimit.DefaultRedisTimeout)
	l := ratelimit.Limit{Rate: 3, Period: time.Hour}

	if n := allowedOf(t, f, "login:ip:10.0.0.1", l, 10); n != 3 {
		t.Fatalf("allowed %d of 10 with Redis unreachable, want 3 (the limit, from memory)", n)
	}
	if !f.Degraded() {
		t.Fatal("not degraded with Redis unreachable")
	}
	if n := f.log.count(slog.LevelWarn); n != 1 {
		t.Fatalf("%d warnings, want 1", n)
	}
	// Probes keep failing every second; the warning waits for the minute.
	for range 59 {
		clock.Advance(time.Second)
		allowedOf(t, f, "login:ip:10.0.0.1", l, 1)
	}
	if n := f.log.count(slog.LevelWarn); n != 1 {
		t.Fatalf("%d warnings within the first minute, want 1", n)
	}
	clock.Advance(time.Second)
	allowedOf(t, f, "login:ip:10.0.0.1", l, 1)
	if n := f.log.count(slog.LevelWarn); n != 2 {
		t.Fatalf("%d warnings after a minute, want 2", n)
	}
}

func TestFallbackReturnsToTheSharedLimitWhenARestartedRedisAnswers(t *testing.T) {
	srv := testenv.StartRedis(t)
	clock := testenv.NewClock(time.Now())
	prefix := "fluxauth:rl:"
	a := newInstance(t, srv.URL(), prefix, clock, time.Second)
	b := newInstance(t, srv.URL(), prefix, clock, time.Second)
	l := ratelimit.Limit{Rate: 4, Period: time.Hour}

	// Up: one global limit.
	if n := allowedOf(t, a, "k1", l, 3) + allowedOf(t, b, "k1", l, 3); n != 4 {
		t.Fatalf("allowed %d of 6 across two instances with Redis up, want 4", n)
	}

	srv.Stop()
	// Down: each instance limits on its own.
	if n := allowedOf(t, a, "k2", l, 6); n != 4 {
		t.Fatalf("instance a allowed %d of 6 with Redis down, want 4", n)
	}
	if n := allowedOf(t, b, "k2", l, 6); n != 4 {
		t.Fatalf("instance b allowed %d of 6 with Redis down, want 4", n)
	}
	if !a.Degraded() || !b.Degraded() {
		t.Fatal("not degraded with Redis down")
	}

	srv.Start() // same port, empty
	allowedOf(t, a, "k2", l, 1)
	if !a.Degraded() {
		t.Fatal("probed Redis before the probe interval passed")
	}
	awaitRecovery(t, a.Fallback, clock)
	awaitRecovery(t, b.Fallback, clock)
	if n := allowedOf(t, a, "k3", l, 3) + allowedOf(t, b, "k3", l, 3); n != 4 {
		t.Fatalf("allowed %d of 6 across two instances after recovery, want 4 (one shared limit again)", n)
	}
	if a.log.count(slog.LevelInfo) != 1 {
		t.Fatalf("%d recovery notices, want 1", a.log.count(slog.LevelInfo))
	}
}

func TestFallbackBypassesAFrozenRedisWithinTheTimeout(t *testing.T) {
	srv := testenv.StartRedis(t)
	clock := testenv.NewClock(time.Now())
	f := newInstance(t, srv.URL(), "fluxauth:rl:", clock, ratelimit.DefaultRedisTimeout)
	l := ratelimit.Limit{Rate: 100, Period: time.Second}
	allowedOf(t, f, "warm", l, 1) // open a connection while Redis answers

	srv.Freeze()
	start := time.Now()
	if n := allowedOf(t, f, "k", l, 1); n != 1 {
		t.Fatal("request refused while Redis is frozen")
	}
	// 25ms timeout; generous margin for -race and a loaded machine, far below go-redis's 3s default.
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("first call with Redis frozen took %v, want about the 25ms timeout", d)
	}
	if !f.Degraded() {
		t.Fatal("not degraded with Redis frozen")
	}
	sent := f.calls.Load()
	allowedOf(t, f, "k", l, 100)
	if n := f.calls.Load() - sent; n != 0 {
		t.Fatalf("100 calls between probes sent %d commands to the frozen Redis: they should not wait for it", n)
	}

	srv.Thaw()
	awaitRecovery(t, f.Fallback, clock)
}

func TestFallbackResetClearsTheLocalCountsFromAnOutage(t *testing.T) {
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	f := newInstance(t, "redis://127.0.0.1:"+strconv.Itoa(freePort(t))+"/0", "fluxauth:rl:", clock, ratelimit.DefaultRedisTimeout)
	lo := ratelimit.Lockout{Limiter: f, Limit: ratelimit.Limit{Rate: 1, Period: 15 * time.Minute, Burst: 10}}
	key := ratelimit.Key("lockout:email", "jane@example.com")
	for range 10 {
		lo.Attempt(context.Background(), key)
	}
	if r, _ := lo.Attempt(context.Background(), key); r.Allowed {
		t.Fatal("not locked after 10 failures during the outage")
	}
	if err := lo.Reset(context.Background(), key); err != nil {
		t.Fatalf("reset during the outage: %v", err)
	}
	if r, _ := lo.Attempt(context.Background(), key); !r.Allowed || r.Remaining != 9 {
		t.Fatalf("after reset: %+v, want the first of 10 attempts allowed", r)
	}
}

func TestFallbackRejectsAnInvalidLimitWithoutGoingDegraded(t *testing.T) {
	rdb := mustSharedRedis(t)
	clock := testenv.NewClock(time.Now())
	f := ratelimit.NewFallback(ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: uniquePrefix(t, rdb)}), ratelimit.NewMemory(clock), newBreaker(clock))
	if _, err := f.Allow(context.Background(), "k", ratelimit.Limit{Rate: -1, Period: time.Second}); err == nil {
		t.Fatal("no error for a negative rate")
	}
	if f.Degraded() {
		t.Fatal("a bad limit marked Redis degraded")
	}
}

func TestFallbackPassesACancelledRequestBackWithoutGoingDegraded(t *testing.T) {
	rdb := mustSharedRedis(t)
	clock := testenv.NewClock(time.Now())
	f := ratelimit.NewFallback(ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: uniquePrefix(t, rdb)}), ratelimit.NewMemory(clock), newBreaker(clock))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Allow(ctx, "k", ratelimit.Limit{Rate: 1, Period: time.Second}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Allow with a cancelled context: %v, want context.Canceled", err)
	}
	if f.Degraded() {
		t.Fatal("a client going away marked Redis degraded")
	}
}

func TestFallbackResetLocalForgetsTheKeyInTheInstancesOwnLimiterOnly(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	shared, local := ratelimit.NewMemory(clock), ratelimit.NewMemory(clock)
	f := ratelimit.NewFallback(shared, local, newBreaker(clock))
	l := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}
	ctx := context.Background()
	for _, lim := range []ratelimit.Limiter{shared, local} {
		for range 2 {
			lim.Allow(ctx, "k", l)
		}
	}
	if err := f.ResetLocal(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if res, _ := local.Peek(ctx, "k", l); res.Remaining != 2 {
		t.Fatalf("local after ResetLocal: %d remaining, want 2", res.Remaining)
	}
	if res, _ := shared.Peek(ctx, "k", l); res.Allowed {
		t.Fatal("ResetLocal reset the shared limiter too: it is the unlocking instance's to reset, once")
	}
}
