package account

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/emailaddr"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// limitError is the refusal the client sees; the decision itself reaches the HTTP layer's headers
// through the request's LimitReport.
func limitError(res ratelimit.Result, locked bool) error {
	secs := int(math.Ceil(res.RetryAfter.Seconds()))
	msg := fmt.Sprintf("Too many requests; try again in %d seconds.", secs)
	if locked {
		msg = fmt.Sprintf("Too many failed sign-in attempts; try again in %d seconds.", secs)
	}
	return fluxauth.Errorf(fluxauth.ERateLimited, "%s", msg)
}

// LimitReport collects the rate-limit decisions a request passed, so the HTTP layer can send the
// RateLimit headers of the tightest one with whatever the answer is.
type LimitReport struct {
	mu       sync.Mutex
	tightest *ratelimit.Result
}

type limitReportKey struct{}

// WithLimitReport returns ctx in which the Service reports the limits it applies to rep.
func WithLimitReport(ctx context.Context, rep *LimitReport) context.Context {
	return context.WithValue(ctx, limitReportKey{}, rep)
}

// ReportedLimit returns the tightest decision reported in ctx (a refusal, else the one with the
// fewest remaining events), or nil when no limit applied.
func ReportedLimit(ctx context.Context) *ratelimit.Result {
	rep, _ := ctx.Value(limitReportKey{}).(*LimitReport)
	if rep == nil {
		return nil
	}
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return rep.tightest
}

func noteLimit(ctx context.Context, res ratelimit.Result) {
	rep, _ := ctx.Value(limitReportKey{}).(*LimitReport)
	if rep == nil || res.Limit == 0 {
		return
	}
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if rep.tightest != nil && !rep.tightest.Allowed {
		return // a refusal is what the client must see
	}
	if rep.tightest == nil || res.Remaining < rep.tightest.Remaining || !res.Allowed {
		r := res
		rep.tightest = &r
	}
}

// limit is one rule a request is held to: its name, its budget, and the parts of its key.
type limit struct {
	rule  string
	limit ratelimit.Limit
	parts []string
}

// allow takes one event from each rule's budget in order, in one limiter call (one Redis round
// trip), stopping at the first rule that refuses. Over a limit it records one rate_limit_exceeded
// per key per window (the limiter itself deduplicates, so this holds across instances) and returns
// rate_limited.
func (s *Service) allow(ctx context.Context, dev Device, limits ...limit) error {
	if s.Limiter == nil {
		return nil
	}
	checks := make([]ratelimit.Check, 0, len(limits))
	rules := make([]limit, 0, len(limits))
	for _, l := range limits {
		if !l.limit.IsZero() {
			checks = append(checks, ratelimit.Check{Key: ratelimit.Key(l.rule, l.parts...), Limit: l.limit})
			rules = append(rules, l)
		}
	}
	if len(checks) == 0 {
		return nil
	}
	results, err := s.Limiter.AllowAll(ctx, checks...)
	if err != nil {
		return err
	}
	for i, res := range results {
		noteLimit(ctx, res)
		if res.Allowed {
			continue
		}
		if err := s.limitExceeded(ctx, rules[i].rule, checks[i].Key, rules[i].limit, "", dev); err != nil {
			return err
		}
		return limitError(res, false)
	}
	return nil
}

// limitExceeded records rate_limit_exceeded unless this key already produced one in this window.
func (s *Service) limitExceeded(ctx context.Context, rule, key string, l ratelimit.Limit, userID string, dev Device) error {
	if first, err := s.firstIn(ctx, key, l.Period); err != nil || !first {
		return err
	}
	return s.record(ctx, &fluxauth.SecurityEvent{
		Type: fluxauth.EventRateLimitExceeded, Severity: fluxauth.SeverityWarning, UserID: userID,
		Metadata: map[string]any{"rule": rule, "key": key, "limit": l.String()},
	}, dev)
}

// firstIn reports whether this is the first call for key in the period, on every instance: it keeps
// repeated conditions from flooding the audit log with identical events. Without a limiter every
// call is first.
func (s *Service) firstIn(ctx context.Context, key string, period time.Duration) (bool, error) {
	if s.Limiter == nil {
		return true, nil
	}
	res, err := s.Limiter.Allow(ctx, ratelimit.Key("event", key), ratelimit.Limit{Rate: 1, Period: period, Burst: 1})
	return res.Allowed, err
}

// lockoutKey is the failed-login lockout's key, and this is its rule. Every password login takes one
// attempt from a budget before the password is checked (attemptLogin), whatever the client IP; a
// correct password clears the count (loginSucceeded). The budget is the account's, by its ID, when
// an account has the address: every spelling that reaches the account (emailaddr.Canonical makes
// "KATE@x" and "\u212Aate@x" its address too) draws on it, and no other account's success can clear
// it. An address no account has is throttled alike on the budget of its canonical form, so the
// answers do not reveal which addresses are accounts. Rules.Lockout, RATE/PERIOD:BURST, sets the
// budget: BURST failures in quick succession lock the account or address, which then gets one
// attempt every PERIOD/RATE and its whole budget back after BURST×PERIOD/RATE without attempts.
func lockoutKey(email, userID string) string {
	if userID != "" {
		return ratelimit.Key("lockout:user", userID)
	}
	return ratelimit.Key("lockout:email", emailaddr.Canonical(email))
}

// attemptLogin takes one try from the failed-login budget of the account userID, or of the email
// when no account has it (userID empty), before the password is checked: consuming first is what
// keeps parallel guesses from all passing a check made before any failure was counted. A refusal is
// recorded as a failed_login, with deviceNote saying what a presented device token did.
func (s *Service) attemptLogin(ctx context.Context, email, userID string, dev Device, deviceNote string) error {
	if s.Limiter == nil || s.Rules.Lockout.IsZero() {
		return nil
	}
	key := lockoutKey(email, userID)
	res, err := (ratelimit.Lockout{Limiter: s.Limiter, Limit: s.Rules.Lockout}).Attempt(ctx, key)
	if err != nil {
		return err
	}
	noteLimit(ctx, res)
	if res.Allowed {
		return nil
	}
	if err := s.limitExceeded(ctx, "lockout", key, s.Rules.Lockout, userID, dev); err != nil {
		return err
	}
	// A refused attempt is a failed login too: otherwise an account under a guessing attack would
	// look quiet once locked, and the failed-login alert per account could never fire. It adds no
	// events an attacker could not cause with wrong passwords: the per-IP limits come first.
	if err := s.recordFailedLogin(ctx, userID, email, "locked_out", dev, deviceNote, nil); err != nil {
		return err
	}
	return limitError(res, true)
}

func (s *Service) loginSucceeded(ctx context.Context, userID string) {
	if s.Limiter == nil || s.Rules.Lockout.IsZero() {
		return
	}
	if err := (ratelimit.Lockout{Limiter: s.Limiter, Limit: s.Rules.Lockout}).Reset(ctx, lockoutKey("", userID)); err != nil {
		s.Logger.WarnContext(ctx, "lockout reset failed", "err", err)
	}
}

// networkKey names the network a client address is in, for telling two clients apart: an IPv4
// address by its /24, an IPv6 one by its /64 (as ipKey). An address that does not parse is itself.
func networkKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if !a.Is4() {
		return ipKey(ip)
	}
	p, err := a.Prefix(24)
	if err != nil {
		return ip
	}
	return p.String()
}

// ipKey is what per-IP limits count a client address by: an IPv4 address as itself, an IPv6 one by
// its /64, the block one subscriber gets, so that walking the addresses of one network buys no
// budget. An address that does not parse counts as itself.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
