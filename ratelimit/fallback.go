package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var _ Limiter = (*Fallback)(nil)

// Defaults for Fallback.
const (
	// DefaultProbeEvery is how often a degraded Fallback tries Redis again. Between probes every
	// call goes straight to memory, so an outage costs one timeout a second, not one per request.
	DefaultProbeEvery = time.Second
	// DefaultWarnEvery throttles the "Redis unavailable" warning, so an outage under load does not
	// flood the logs.
	DefaultWarnEvery = time.Minute
)

// Fallback limits with the shared limiter (Redis) and, whenever it fails or times out, answers that
// call from the instance's own limiter (Memory) instead: requests are still served, limited per
// instance. It reports itself degraded until the shared limiter answers again, which it notices by
// itself: after a failure it probes at most every ProbeEvery.
type Fallback struct {
	shared Limiter
	local  Limiter
	log    *slog.Logger
	clock  fluxauth.Clock

	// ProbeEvery and WarnEvery may be changed before first use.
	ProbeEvery time.Duration
	WarnEvery  time.Duration

	degraded  atomic.Bool
	nextProbe atomic.Int64 // unix nanoseconds; only read while degraded
	probing   atomic.Bool  // one caller at a time probes the shared limiter

	warnMu   sync.Mutex
	lastWarn time.Time
}

// NewFallback returns a limiter that uses shared, and local while shared is failing. It logs to log
// and times its probes and warnings by clock.
func NewFallback(shared, local Limiter, log *slog.Logger, clock fluxauth.Clock) *Fallback {
	return &Fallback{
		shared: shared, local: local, log: log, clock: clock,
		ProbeEvery: DefaultProbeEvery, WarnEvery: DefaultWarnEvery,
	}
}

// Degraded reports whether the last attempt to use the shared limiter failed, so that limits are
// per instance. Readiness reports it ("redis: degraded") but stays ready: requests are served.
func (f *Fallback) Degraded() bool { return f.degraded.Load() }

// Allow consumes one event on key if l allows it.
func (f *Fallback) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	if _, _, err := l.normalize(); err != nil {
		return Result{}, err // a bad limit is the caller's bug, not an outage
	}
	return f.decide(ctx, func(lim Limiter) (Result, error) { return lim.Allow(ctx, key, l) })
}

// Peek reports what Allow would decide now without consuming.
func (f *Fallback) Peek(ctx context.Context, key string, l Limit) (Result, error) {
	if _, _, err := l.normalize(); err != nil {
		return Result{}, err
	}
	return f.decide(ctx, func(lim Limiter) (Result, error) { return lim.Peek(ctx, key, l) })
}

// Reset forgets key in both limiters: the local one may hold counts from an outage. While the shared
// limiter is down its counts for key stay; they expire on their own.
func (f *Fallback) Reset(ctx context.Context, key string) error {
	_, err := f.decide(ctx, func(lim Limiter) (Result, error) {
		if lim == f.local {
			return Result{}, nil // reset below in every case
		}
		return Result{}, lim.Reset(ctx, key)
	})
	if err != nil {
		return err
	}
	return f.local.Reset(ctx, key)
}

func (f *Fallback) decide(ctx context.Context, call func(Limiter) (Result, error)) (Result, error) {
	return fallbackDo(f, ctx, call)
}

// fallbackDo makes call on the shared limiter, or on the local one while the shared one fails.
func fallbackDo[T any](f *Fallback, ctx context.Context, call func(Limiter) (T, error)) (T, error) {
	if f.degraded.Load() {
		if f.clock.Now().UnixNano() < f.nextProbe.Load() || !f.probing.CompareAndSwap(false, true) {
			return call(f.local)
		}
		defer f.probing.Store(false)
	}
	res, err := call(f.shared)
	if err == nil {
		if f.degraded.CompareAndSwap(true, false) {
			f.log.Info("ratelimit: redis is back; limits are shared across instances again")
		}
		return res, nil
	}
	if ctx.Err() != nil {
		// The caller gave up (client went away): that says nothing about Redis.
		var zero T
		return zero, ctx.Err()
	}
	f.markDegraded(err)
	return call(f.local)
}

func (f *Fallback) markDegraded(err error) {
	now := f.clock.Now()
	f.nextProbe.Store(now.Add(f.ProbeEvery).UnixNano())
	f.degraded.Store(true)
	f.warnMu.Lock()
	warn := f.lastWarn.IsZero() || now.Sub(f.lastWarn) >= f.WarnEvery
	if warn {
		f.lastWarn = now
	}
	f.warnMu.Unlock()
	if warn {
		f.log.Warn("ratelimit: redis unavailable; limiting per instance from memory until it answers again",
			"err", err, "probe_every", f.ProbeEvery, "next_warning_in", f.WarnEvery)
	}
}
