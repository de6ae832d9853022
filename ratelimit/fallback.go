package ratelimit

import (
	"context"

	"github.com/fluxstudio/fluxauth/internal/breaker"
)

var _ Limiter = (*Fallback)(nil)

// Fallback limits with the shared limiter (Redis) and, whenever it fails, times out or its breaker
// is open, answers that call from the instance's own limiter (Memory) instead: requests are still
// served, limited per instance. The breaker (internal/breaker: timeout, breaker, probe, recovery)
// is the one Redis's other users share, so an outage any of them notices spares the others too.
type Fallback struct {
	shared  Limiter
	local   Limiter
	breaker *breaker.Breaker
}

// NewFallback returns a limiter that uses shared through b, and local whenever b does not let a
// call through or the call fails.
func NewFallback(shared, local Limiter, b *breaker.Breaker) *Fallback {
	return &Fallback{shared: shared, local: local, breaker: b}
}

// Degraded reports whether the shared limiter is being skipped, so that limits are per instance.
// Readiness reports it ("redis: degraded") but stays ready: requests are served.
func (f *Fallback) Degraded() bool { return f.breaker.Open() }

// Allow consumes one event on key if l allows it.
func (f *Fallback) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	if _, _, err := l.normalize(); err != nil {
		return Result{}, err // a bad limit is the caller's bug, not an outage
	}
	return f.decide(ctx, func(ctx context.Context, lim Limiter) (Result, error) { return lim.Allow(ctx, key, l) })
}

// Peek reports what Allow would decide now without consuming.
func (f *Fallback) Peek(ctx context.Context, key string, l Limit) (Result, error) {
	if _, _, err := l.normalize(); err != nil {
		return Result{}, err
	}
	return f.decide(ctx, func(ctx context.Context, lim Limiter) (Result, error) { return lim.Peek(ctx, key, l) })
}

// AllowAll consumes one event on each check's key in order, stopping at the first refusal, all on
// the shared limiter or, when it fails, all on the local one.
func (f *Fallback) AllowAll(ctx context.Context, checks ...Check) ([]Result, error) {
	for _, c := range checks {
		if _, _, err := c.Limit.normalize(); err != nil {
			return nil, err
		}
	}
	return fallbackDo(f, ctx, func(ctx context.Context, lim Limiter) ([]Result, error) { return lim.AllowAll(ctx, checks...) })
}

// Reset forgets key in both limiters: the local one may hold counts from an outage. While the shared
// limiter is down its counts for key stay; they expire on their own.
func (f *Fallback) Reset(ctx context.Context, key string) error {
	_, err := f.decide(ctx, func(ctx context.Context, lim Limiter) (Result, error) {
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

func (f *Fallback) decide(ctx context.Context, call func(context.Context, Limiter) (Result, error)) (Result, error) {
	return fallbackDo(f, ctx, call)
}

// fallbackDo makes call on the shared limiter through the breaker, or on the local one when the
// breaker does not let it through or the call fails.
func fallbackDo[T any](f *Fallback, ctx context.Context, call func(context.Context, Limiter) (T, error)) (T, error) {
	var res T
	err := f.breaker.Do(ctx, "rate limit", func(ctx context.Context) error {
		var err error
		res, err = call(ctx, f.shared)
		return err
	})
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		// The caller gave up (client went away): that says nothing about Redis.
		var zero T
		return zero, ctx.Err()
	}
	return call(ctx, f.local)
}

// ResetLocal forgets key in the instance's own limiter only. When another instance has already
// reset the shared limiter, this clears what this instance counted during an outage.
func (f *Fallback) ResetLocal(ctx context.Context, key string) error { return f.local.Reset(ctx, key) }
