package ratelimit

import "context"

// Lockout is the mechanism of the failed-login lockout: a GCRA budget of attempts per key, on any
// Limiter, under Limit (Rules.Lockout), cleared by Reset. Which key a login counts against is the
// caller's rule, described where it is made (account's lockoutKey).
//
// The order of calls is what makes it hold under concurrency. Attempt consumes first and is the gate:
// call it before verifying the password, refuse the login when it is not allowed, and call Reset only
// after the password verified. Checking the count, verifying, and then counting the failure would let
// 50 parallel wrong guesses all pass the check before any failure is counted; with Attempt as the gate
// each guess takes one unit of the budget atomically, so no more than Burst guesses are ever verified
// between two successful logins.
//
// Reading a key's state without taking an attempt, for display, is Limiter.Peek on the same key and
// Limit; it must never be the gate.
type Lockout struct {
	Limiter Limiter
	Limit   Limit
}

// Attempt takes one attempt from key's budget. When the result is not allowed the key is locked:
// do not verify the password, and answer with RetryAfter.
func (lo Lockout) Attempt(ctx context.Context, key string) (Result, error) {
	return lo.Limiter.Allow(ctx, key, lo.Limit)
}

// Reset clears key's count after a successful login.
func (lo Lockout) Reset(ctx context.Context, key string) error {
	return lo.Limiter.Reset(ctx, key)
}
