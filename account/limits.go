package account

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// LimitError is a refusal by a rate limit; it carries the decision so the HTTP layer can send
// Retry-After and the RateLimit headers.
type LimitError struct {
	Result ratelimit.Result
	err    *fluxauth.Error
}

func (e *LimitError) Error() string { return e.err.Error() }
func (e *LimitError) Unwrap() error { return e.err }

func newLimitError(res ratelimit.Result, locked bool) *LimitError {
	secs := int(math.Ceil(res.RetryAfter.Seconds()))
	msg := fmt.Sprintf("Too many requests; try again in %d seconds.", secs)
	if locked {
		msg = fmt.Sprintf("Too many failed sign-in attempts; try again in %d seconds.", secs)
	}
	return &LimitError{Result: res, err: fluxauth.Errorf(fluxauth.ERateLimited, "%s", msg)}
}

// limits collects the decisions of one request so the tightest can be reported on success.
type limits struct{ tightest *ratelimit.Result }

func (l *limits) note(res ratelimit.Result) {
	if res.Limit == 0 {
		return
	}
	if l.tightest == nil || res.Remaining < l.tightest.Remaining {
		r := res
		l.tightest = &r
	}
}

// allow takes one event from the rule's budget for key parts. Over the limit it records one
// rate_limit_exceeded per key per window (the limiter itself deduplicates, so this holds across
// instances) and returns a *LimitError.
func (s *Service) allow(ctx context.Context, acc *limits, rule string, l ratelimit.Limit, dev Device, parts ...string) error {
	if s.Limiter == nil || l.IsZero() {
		return nil
	}
	key := ratelimit.Key(rule, parts...)
	res, err := s.Limiter.Allow(ctx, key, l)
	if err != nil {
		return err
	}
	if acc != nil {
		acc.note(res)
	}
	if res.Allowed {
		return nil
	}
	if err := s.limitExceeded(ctx, rule, key, l, "", dev); err != nil {
		return err
	}
	return newLimitError(res, false)
}

// limitExceeded records rate_limit_exceeded unless this key already produced one in this window.
func (s *Service) limitExceeded(ctx context.Context, rule, key string, l ratelimit.Limit, userID string, dev Device) error {
	once, err := s.Limiter.Allow(ctx, ratelimit.Key("event", key), ratelimit.Limit{Rate: 1, Period: l.Period, Burst: 1})
	if err != nil || !once.Allowed {
		return err
	}
	return s.record(ctx, &fluxauth.SecurityEvent{
		Type: fluxauth.EventRateLimitExceeded, Severity: fluxauth.SeverityWarning, UserID: userID,
		Metadata: map[string]any{"rule": rule, "key": key, "limit": l.String()},
	}, dev)
}

// lockoutKey is per email, not per account, so an unknown email is throttled exactly like a known
// one and the answers reveal nothing.
func lockoutKey(email string) string { return ratelimit.Key("lockout:email", strings.ToLower(email)) }

// attemptLogin takes one try from the account's failed-login budget before the password is checked:
// consuming first is what keeps parallel guesses from all passing a check made before any failure
// was counted.
func (s *Service) attemptLogin(ctx context.Context, acc *limits, email, userID string, dev Device) error {
	if s.Limiter == nil || s.Rules.Lockout.IsZero() {
		return nil
	}
	key := lockoutKey(email)
	res, err := (ratelimit.Lockout{Limiter: s.Limiter, Limit: s.Rules.Lockout}).Attempt(ctx, key)
	if err != nil {
		return err
	}
	if res.Allowed {
		return nil
	}
	if err := s.limitExceeded(ctx, "lockout", key, s.Rules.Lockout, userID, dev); err != nil {
		return err
	}
	return newLimitError(res, true)
}

func (s *Service) loginSucceeded(ctx context.Context, email string) {
	if s.Limiter == nil || s.Rules.Lockout.IsZero() {
		return
	}
	if err := (ratelimit.Lockout{Limiter: s.Limiter, Limit: s.Rules.Lockout}).Reset(ctx, lockoutKey(email)); err != nil {
		s.Logger.WarnContext(ctx, "lockout reset failed", "err", err)
	}
}
