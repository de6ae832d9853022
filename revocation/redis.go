package revocation

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/breaker"
)

// Defaults of RedisConfig.
const (
	DefaultRetryInterval = time.Second
	DefaultMaxPending    = 10000
)

// flushTimeout bounds one re-announcement round: a pipeline of at most MaxPending SETs.
const flushTimeout = 2 * time.Second

// RedisConfig configures a Redis list; zero fields take the defaults named.
type RedisConfig struct {
	Prefix string // key prefix, e.g. "fluxauth:"
	// Window is how long Redis is not believed once it is found to have lost its data: the longest
	// an access token issued before the loss can still be accepted, its TTL plus leeway. Required.
	Window time.Duration
	// Breaker guards every Redis call: its timeout bounds each command on the request path, and
	// while it is open Redis is not asked (checks go to the database, announcements to the queue).
	// serve shares one with the rate limiter. Default: a breaker of its own with breaker's defaults.
	Breaker *breaker.Breaker
	// RetryInterval is how often Run re-announces failed announcements: DefaultRetryInterval.
	RetryInterval time.Duration
	// MaxPending bounds the failed announcements kept for Run: DefaultMaxPending.
	MaxPending int
	Clock      fluxauth.Clock // fluxauth.SystemClock
	Logger     *slog.Logger   // discards
}

// Redis keeps revoked session IDs in Redis, in front of the database list db; see the package
// comment for when it is believed. Build it with NewRedis; run Run for as long as it is used.
type Redis struct {
	client  *redis.Client
	db      *DB
	cfg     RedisConfig
	breaker *breaker.Breaker

	lastDistrust atomic.Int64 // the last sentinel time logged, so one loss is logged once

	mu      sync.Mutex
	pending map[string]time.Time // session → until, for announcements Redis has not taken
	// distrustUntil is the latest until of announcements dropped from a full queue: Redis must not
	// be believed before it, and Flush tells every instance so through the sentinel.
	distrustUntil time.Time
}

// NewRedis returns a Redis list in front of db, which answers whenever Redis cannot be believed.
func NewRedis(client *redis.Client, db *DB, c RedisConfig) *Redis {
	if db == nil || c.Window <= 0 {
		panic("revocation: NewRedis needs the database list and a positive Window")
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.Clock == nil {
		c.Clock = fluxauth.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Breaker == nil {
		c.Breaker = breaker.New(breaker.Config{Name: "redis", Fallback: "revocations are checked in the database",
			Clock: c.Clock, Logger: c.Logger})
	}
	return &Redis{client: client, db: db, cfg: c, breaker: c.Breaker, pending: map[string]time.Time{}}
}

func (r *Redis) key(sessionID string) string { return r.cfg.Prefix + "revoked:" + sessionID }

// sentinelKey holds the time (Unix milliseconds) from which Redis may be believed.
func (r *Redis) sentinelKey() string { return r.cfg.Prefix + "revocation:trusted-from" }

// distrustScript moves the sentinel to ARGV[1] unless it already says later, and returns its value.
// A missing or unreadable sentinel counts as earlier. Keeping the maximum means two instances that
// notice a loss at once, or a later overflow, can only lengthen the window.
var distrustScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]))
local want = tonumber(ARGV[1])
if cur == nil or cur < want then
  redis.call('SET', KEYS[1], ARGV[1])
  return want
end
return cur
`)

// Announce remembers the revocation on this instance and records it in Redis until its access
// tokens expire. When Redis does not take it, it is kept for Run to re-announce; either way the
// revocation is already in the database, so Announce does not fail.
func (r *Redis) Announce(ctx context.Context, sessionID string, until time.Time) error {
	_ = r.db.Announce(ctx, sessionID, until)
	now := r.cfg.Clock.Now()
	if !until.After(now) {
		return nil
	}
	// The revocation has committed; announcing it should not wait for Run because the client hung
	// up at that moment.
	err := r.breaker.Do(context.WithoutCancel(ctx), "revocation announce", func(ctx context.Context) error {
		return r.client.Set(ctx, r.key(sessionID), "1", until.Sub(now)).Err()
	})
	if err == nil {
		return nil
	}
	r.enqueue(ctx, sessionID, until, now)
	return nil
}

func (r *Redis) enqueue(ctx context.Context, sessionID string, until, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, queued := r.pending[sessionID]
	if !queued && len(r.pending) >= r.cfg.MaxPending {
		for k, u := range r.pending {
			if !u.After(now) {
				delete(r.pending, k)
			}
		}
	}
	if !queued && len(r.pending) >= r.cfg.MaxPending {
		if r.distrustUntil.IsZero() {
			r.cfg.Logger.WarnContext(ctx, "revocation: re-announcement queue full; redis will not be believed until the dropped revocations' access tokens expire",
				"max_pending", r.cfg.MaxPending)
		}
		if until.After(r.distrustUntil) {
			r.distrustUntil = until
		}
		return
	}
	if until.After(r.pending[sessionID]) {
		r.pending[sessionID] = until
	}
}

// IsRevoked reports whether the session was ended: one MGET of the session's key and the
// sentinel when Redis can be believed, else the database list.
func (r *Redis) IsRevoked(ctx context.Context, sessionID string) (bool, error) {
	if r.db.knownRevoked(sessionID) {
		return true, nil
	}
	now := r.cfg.Clock.Now()
	var vals []any
	err := r.breaker.Do(ctx, "revocation check", func(ctx context.Context) error {
		var err error
		vals, err = r.client.MGet(ctx, r.key(sessionID), r.sentinelKey()).Result()
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return r.db.IsRevoked(ctx, sessionID)
	}
	if vals[0] != nil {
		return true, nil
	}
	from, ok := parseMillis(vals[1])
	if !ok {
		// Redis has lost what it held (or never held anything): nothing it lacks can be believed
		// until every access token issued before the loss has expired.
		if from, err = r.distrust(ctx, now.Add(r.cfg.Window)); err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return r.db.IsRevoked(ctx, sessionID)
		}
		if prev := r.lastDistrust.Load(); from.UnixMilli() > prev && r.lastDistrust.CompareAndSwap(prev, from.UnixMilli()) {
			r.cfg.Logger.WarnContext(ctx, "revocation: redis has lost its data; checking revocations in the database until every older access token has expired",
				"until", from)
		}
	}
	if now.Before(from) {
		return r.db.IsRevoked(ctx, sessionID)
	}
	return false, nil
}

// Owner returns the ID of the user the session belongs to, from the database list's cache.
func (r *Redis) Owner(ctx context.Context, sessionID string) (string, error) {
	return r.db.Owner(ctx, sessionID)
}

func (r *Redis) distrust(ctx context.Context, until time.Time) (time.Time, error) {
	var ms int64
	err := r.breaker.Do(ctx, "revocation mark untrusted", func(ctx context.Context) error {
		var err error
		ms, err = distrustScript.Run(ctx, r.client, []string{r.sentinelKey()}, ceilMillis(until)).Int64()
		return err
	})
	return time.UnixMilli(ms), err
}

// ceilMillis rounds up: the sentinel may say later than asked, never earlier.
func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

func parseMillis(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// Flush re-announces the revocations Redis did not take, skipping those whose access tokens have
// expired, and marks Redis untrusted for as long as any revocation dropped from a full queue needs.
// Run calls it every RetryInterval; serve calls it once more at shutdown.
func (r *Redis) Flush(ctx context.Context) error {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	batch := make(map[string]time.Time, len(r.pending))
	for sid, until := range r.pending {
		if !until.After(now) {
			delete(r.pending, sid)
			continue
		}
		batch[sid] = until
	}
	distrust := r.distrustUntil
	if !distrust.After(now) {
		distrust, r.distrustUntil = time.Time{}, time.Time{}
	}
	r.mu.Unlock()
	if len(batch) == 0 && distrust.IsZero() {
		return nil
	}
	// Off the request path, so it may take longer than a check, and it is attempted even while the
	// breaker is open: it is how a backlog gets through, at shutdown too.
	err := r.breaker.Try(ctx, "revocation re-announce", flushTimeout, func(ctx context.Context) error {
		pipe := r.client.Pipeline()
		if !distrust.IsZero() {
			distrustScript.Eval(ctx, pipe, []string{r.sentinelKey()}, ceilMillis(distrust))
		}
		for sid, until := range batch {
			pipe.Set(ctx, r.key(sid), "1", until.Sub(now))
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("revocation: re-announce %d revocations to redis: %w", len(batch), err)
	}
	r.mu.Lock()
	for sid, until := range batch {
		if r.pending[sid].Equal(until) {
			delete(r.pending, sid)
		}
	}
	if r.distrustUntil.Equal(distrust) {
		r.distrustUntil = time.Time{}
	}
	r.mu.Unlock()
	r.cfg.Logger.InfoContext(ctx, "revocation: re-announced revocations to redis", "count", len(batch), "untrusted_until", distrust)
	return nil
}

// Run re-announces failed announcements every RetryInterval, on the list's clock, until ctx ends.
func (r *Redis) Run(ctx context.Context) {
	t, tick := r.cfg.Clock.NewTicker(r.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			_ = r.Flush(ctx) // the breaker warns about an outage, throttled
		}
	}
}
