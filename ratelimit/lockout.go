package ratelimit

import "context"

// Lockout locks an account after repeated failed logins, whatever IP they come from. It is a GCRA
// key per account (Rules.Lockout, 1/15m burst 10 by default: ten failures lock the account for
// fifteen minutes) on any Limiter, cleared by a successful login.
//
// The order of calls is what makes it hold under concurrency. Attempt consumes first and is the gate:
// call it before verifying the password, refuse the login when it is not allowed, and call Reset only
// after the password verified. Checking the count, verifying, and then counting the failure would let
// 50 parallel wrong guesses all pass the check before any failure is counted; with Attempt as the gate
// each guess takes one unit of the budget atomically, so no more than Burst guesses are ever verified
// between two successful logins.
type Lockout struct {
	Limiter Limiter
	Limit   Limit
}

// LockoutKey is the lockout key of an account (its user ID, so that email case cannot split it).
func LockoutKey(userID string) string { return Key("lockout:user", userID) }

// Attempt takes one attempt from key's budget. When the result is not allowed the account is locked:
// do not verify the password, and answer with RetryAfter.
func (lo Lockout) Attempt(ctx context.Context, key string) (Result, error) {
	return lo.Limiter.Allow(ctx, key, lo.Limit)
}

// Check reports whether key is locked now, without taking an attempt: for display and monitoring,
// never as the gate (see Lockout).
func (lo Lockout) Check(ctx context.Context, key string) (Result, error) {
	return lo.Limiter.Peek(ctx, key, lo.Limit)
}

// Reset clears key's failures after a successful login.
func (lo Lockout) Reset(ctx context.Context, key string) error {
	return lo.Limiter.Reset(ctx, key)
}
