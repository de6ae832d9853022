// Package ratelimit owns fluxauth's rate limiting: the Limit and Result types, the GCRA decision they
// share, the rules fluxauth applies, the in-process limiter (Memory), the Redis limiter shared by every
// instance (Redis), the fallback between them when Redis is down or slow (Fallback), and the
// failed-login lockout built on them (Lockout).
//
// Every implementation makes the same decision, the generic cell rate algorithm (GCRA): Memory runs
// it in Go, Redis runs a transcription of the same integer arithmetic as one atomic Lua script, and
// the limitertest package is the contract suite both pass. So an instance that falls back to its own
// memory during a Redis outage limits exactly as the cluster would, only per instance.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limit allows Rate events per Period, with bursts of up to Burst events at once (GCRA). Burst 0
// means Burst = Rate. The zero Limit means "no limit": every event is allowed, so a rule can be
// switched off in configuration ("off") without the callers knowing.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// IsZero reports whether l is the zero Limit, which allows everything.
func (l Limit) IsZero() bool { return l == Limit{} }

// String formats l as ParseLimit reads it: "5/1m", "5/1m:10", or "off".
func (l Limit) String() string {
	if l.IsZero() {
		return "off"
	}
	s := strconv.Itoa(l.Rate) + "/" + shortDuration(l.Period)
	if l.Burst != 0 && l.Burst != l.Rate {
		s += ":" + strconv.Itoa(l.Burst)
	}
	return s
}

func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// normalize validates l and fills in the default burst. ok is false for the zero Limit.
func (l Limit) normalize() (n Limit, ok bool, err error) {
	if l.IsZero() {
		return l, false, nil
	}
	if l.Rate <= 0 || l.Period <= 0 || l.Burst < 0 || l.Period/time.Duration(l.Rate) < time.Microsecond {
		return l, false, fmt.Errorf("ratelimit: invalid limit %d/%s burst %d: rate and period must be positive, at most one event a microsecond, and burst not negative", l.Rate, l.Period, l.Burst)
	}
	if l.Burst == 0 {
		l.Burst = l.Rate
	}
	return l, true, nil
}

// ParseLimit reads a limit written as rate/period[:burst], as in configuration: "5/1m" (five a
// minute), "20/m" (a bare unit means one of it), "5/1m:10" (bursts of ten), "1/15m:10". "off" (or
// "0") is the zero Limit, which allows everything.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return Limit{}, nil
	}
	bad := func(why string) (Limit, error) {
		return Limit{}, fmt.Errorf("ratelimit: limit %q: %s (want rate/period[:burst], e.g. 5/1m or 5/1m:10, or off)", s, why)
	}
	rateStr, rest, ok := strings.Cut(s, "/")
	if !ok {
		return bad("no /period")
	}
	periodStr, burstStr, hasBurst := strings.Cut(rest, ":")
	rate, err := strconv.Atoi(rateStr)
	if err != nil || rate <= 0 {
		return bad("rate must be a positive integer")
	}
	if periodStr != "" && strings.IndexAny(periodStr[:1], "0123456789.") < 0 {
		periodStr = "1" + periodStr
	}
	period, err := time.ParseDuration(periodStr)
	if err != nil || period <= 0 {
		return bad("period must be a positive duration such as 1s, 1m, 15m or 1h")
	}
	l := Limit{Rate: rate, Period: period}
	if hasBurst {
		burst, err := strconv.Atoi(burstStr)
		if err != nil || burst <= 0 {
			return bad("burst must be a positive integer")
		}
		l.Burst = burst
	}
	if _, _, err := l.normalize(); err != nil {
		return bad("rate too high for the period")
	}
	return l, nil
}

// Result is the decision on one event, with what the HTTP layer needs for a 429 and the
// RateLimit-* headers.
type Result struct {
	// Allowed reports whether the event may proceed.
	Allowed bool
	// Limit is the most events allowed at once from a rested key: the burst. 0 when unlimited, in
	// which case no RateLimit headers should be sent.
	Limit int
	// Remaining is how many more events would be allowed right now, after this one.
	Remaining int
	// RetryAfter is how long until the next event would be allowed; 0 when Allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the key is fully rested again (Remaining back to Limit).
	ResetAfter time.Duration
}

// Limiter decides whether events may happen. Keys are namespaced strings built with Key, such as
// "login:ip:1.2.3.4"; each key has its own budget under the Limit passed with it. Implementations
// are safe for concurrent use, and a decision is atomic: N concurrent calls on one key are never
// allowed more events than the limit, because deciding and consuming are one step.
type Limiter interface {
	// Allow consumes one event on key if l allows it.
	Allow(ctx context.Context, key string, l Limit) (Result, error)
	// Peek reports what Allow would decide for key now, without consuming anything. Remaining is
	// then the number of events still allowed. It must not be used to gate an action: between the
	// peek and the action other callers can consume the budget.
	Peek(ctx context.Context, key string, l Limit) (Result, error)
	// Reset forgets everything key has consumed.
	Reset(ctx context.Context, key string) error
	// AllowAll consumes one event on each check's key in order, and stops at the first one its limit
	// refuses: the checks after it are not charged, as if Allow had been called for each in turn.
	// It returns the results of the checks it made, the last of them the refusal when there was one.
	// It is one step for the shared limiter (one Redis round trip for a request's several limits),
	// though not atomic across keys for the in-process one.
	AllowAll(ctx context.Context, checks ...Check) ([]Result, error)
}

// Check is one key and the limit it is held to, for AllowAll.
type Check struct {
	Key   string
	Limit Limit
}

// MaxKeyPart is the longest escaped part Key writes as it is; a longer one is replaced by its hash.
const MaxKeyPart = 64

// Key builds a limiter key from a scope ("login:ip") and its parts (an IP address, an email). Parts
// are escaped, so an IPv6 address or an email with a colon can never make two different tuples
// share a key.
//
// Parts come from clients, and limiters keep every key for its window (Memory in the heap, Redis in
// its memory), so a key's length must not be the client's choice: a part whose escaped form is longer
// than MaxKeyPart is written as "#" and the unpadded base64url SHA-256 of the raw part. Escaped parts
// never contain "#", so a hashed part cannot be mistaken for a written one; short parts stay readable
// in the rate_limit_exceeded events that name their key.
func Key(scope string, parts ...string) string {
	var b strings.Builder
	b.WriteString(scope)
	for _, p := range parts {
		b.WriteByte(':')
		if e := url.QueryEscape(p); len(e) <= MaxKeyPart {
			b.WriteString(e)
			continue
		}
		sum := sha256.Sum256([]byte(p))
		b.WriteByte('#')
		b.WriteString(base64.RawURLEncoding.EncodeToString(sum[:]))
	}
	return b.String()
}

// Rules are the limits fluxauth applies; the zero Limit switches a rule off. Their defaults and
// configuration live in internal/config.
type Rules struct {
	// LoginIPEmail limits login attempts for one email from one client IP.
	LoginIPEmail Limit
	// LoginIP limits login attempts from one client IP, whatever the email.
	LoginIP Limit
	// Signup limits account creation from one client IP.
	Signup Limit
	// RefreshSession limits refreshes of one session.
	RefreshSession Limit
	// RefreshIP limits refreshes from one client IP.
	RefreshIP Limit
	// IDTokenIP limits Google and Apple sign-ins from one client IP.
	IDTokenIP Limit
	// LegacyIP limits exchanges of the legacy server's tokens from one client IP.
	LegacyIP Limit
	// ForgotIP and ForgotEmail limit password-reset requests from one client IP, and for one
	// address (in canonical form) from anywhere, whether or not an account has it.
	ForgotIP    Limit
	ForgotEmail Limit
	// ResetIP limits password resets (spending a reset link) from one client IP.
	ResetIP Limit
	// VerifyResend limits the verification mails one account asks for again.
	VerifyResend Limit
	// Lockout is the failed-login lockout's budget of attempts per key: see Lockout, and account's
	// lockoutKey for what the key is.
	Lockout Limit
}

// unlimited is the Result for the zero Limit.
var unlimited = Result{Allowed: true}

// gcra is the one decision every limiter makes; the Redis script is a line-by-line transcription of
// it, so both limit identically. Times are integer microseconds (Unix time; Redis's TIME has that
// resolution), exact in Lua's doubles as well as in Go: redis_rate's floating-point seconds drift by
// an event on limits such as 7/1m, which is why we run our own script.
//
// The key's state is its theoretical arrival time tat: the instant the key would be fully rested
// (0 or past for a rested key). Each event pushes tat one emission interval (Period/Rate) further;
// an event is allowed while the new tat is no more than Burst intervals ahead of now. n is 1 to
// consume an event and 0 to peek. gcra returns the result, the tat to store, and whether to store it.
func gcra(l Limit, tat, now int64, n int) (res Result, newTAT int64, store bool) {
	interval, burstOffset := l.intervals()
	tat = max(tat, now)
	res.Limit = l.Burst
	if n == 0 {
		// Peek: the budget left is how many whole intervals now is past tat-burstOffset.
		diff := now - (tat - burstOffset)
		res.Remaining = int(diff / interval)
		res.ResetAfter = micros(tat - now)
		if res.Remaining >= 1 {
			res.Allowed = true
		} else {
			res.RetryAfter = micros(interval - diff)
		}
		return res, tat, false
	}
	next := tat + interval*int64(n)
	diff := now - (next - burstOffset)
	if diff < 0 {
		res.RetryAfter = micros(-diff)
		res.ResetAfter = micros(tat - now)
		return res, tat, false
	}
	res.Allowed = true
	res.Remaining = int(diff / interval)
	res.ResetAfter = micros(next - now)
	return res, next, true
}

// intervals returns a normalized limit's emission interval and burst offset in microseconds.
func (l Limit) intervals() (interval, burstOffset int64) {
	interval = int64(l.Period / time.Duration(l.Rate) / time.Microsecond)
	return interval, interval * int64(l.Burst)
}

func micros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
