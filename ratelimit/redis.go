package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/redis/go-redis/v9"
)

var _ Limiter = (*Redis)(nil)

// DefaultRedisPrefix namespaces fluxauth's limiter keys in a Redis shared with other data.
const DefaultRedisPrefix = "fluxauth:rl:"

// DefaultRedisTimeout bounds one limiter call. A check on loopback takes well under a millisecond;
// past a few tens of milliseconds Redis is effectively down for a login request, and the Fallback
// answers from memory instead of making users wait.
const DefaultRedisTimeout = 25 * time.Millisecond

// gcraScript is gcra (ratelimit.go) in Lua, line for line, run atomically by Redis: deciding and
// consuming are one step for every instance. It reads Redis's own clock, so instances whose clocks
// disagree still share one limit. The key expires when it would be rested, so Redis holds only
// active keys.
//
// KEYS[1] key; ARGV[1] interval µs, ARGV[2] burst offset µs, ARGV[3] n (0 peeks).
// Returns {allowed 0|1, remaining, retry_after µs, reset_after µs}.
var gcraScript = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst_offset = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call("GET", KEYS[1]) or "") or now
if tat < now then tat = now end
if n == 0 then
  local diff = now - (tat - burst_offset)
  local remaining = math.floor(diff / interval)
  if remaining >= 1 then return {1, remaining, 0, tat - now} end
  return {0, remaining, interval - diff, tat - now}
end
local new_tat = tat + interval * n
local diff = now - (new_tat - burst_offset)
if diff < 0 then return {0, 0, -diff, tat - now} end
redis.call("SET", KEYS[1], string.format("%.0f", new_tat), "PX", math.ceil((new_tat - now) / 1000))
return {1, math.floor(diff / interval), 0, new_tat - now}
`)

// RedisConfig configures the Redis limiter; zero fields take the defaults.
type RedisConfig struct {
	// Prefix namespaces keys; DefaultRedisPrefix when empty. Tests use a unique one each.
	Prefix string
	// Timeout bounds each call, dial and retries included; DefaultRedisTimeout when 0.
	Timeout time.Duration
}

// Redis is the limiter shared by every instance: the GCRA state of a key lives in Redis and each
// decision is one script call, atomic across goroutines and instances.
type Redis struct {
	rdb     *redis.Client
	prefix  string
	timeout time.Duration
}

// NewRedis returns a limiter on rdb. Its failures to reach Redis are cache_unavailable errors
// wrapping fluxauth.ErrUnavailable; behind a Fallback, as serve uses it, none reaches a client.
func NewRedis(rdb *redis.Client, cfg RedisConfig) *Redis {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultRedisTimeout
	}
	// A context deadline bounds socket I/O only when the client was built with
	// ContextTimeoutEnabled; a clone with the short read/write timeouts bounds it either way, while
	// sharing the caller's connection pool.
	return &Redis{rdb: rdb.WithTimeout(cfg.Timeout), prefix: cfg.Prefix, timeout: cfg.Timeout}
}

// Allow consumes one event on key if l allows it.
func (r *Redis) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	return r.decide(ctx, key, l, 1)
}

// Peek reports what Allow would decide now without consuming.
func (r *Redis) Peek(ctx context.Context, key string, l Limit) (Result, error) {
	return r.decide(ctx, key, l, 0)
}

// Reset forgets key.
func (r *Redis) Reset(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.rdb.Del(ctx, r.prefix+key).Err(); err != nil {
		return cacheUnavailable(fmt.Errorf("ratelimit: redis reset: %w: %w", fluxauth.ErrUnavailable, err))
	}
	return nil
}

func (r *Redis) decide(ctx context.Context, key string, l Limit, n int) (Result, error) {
	l, limited, err := l.normalize()
	if err != nil || !limited {
		return unlimited, err
	}
	interval, burstOffset := l.intervals()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := gcraScript.Run(ctx, r.rdb, []string{r.prefix + key}, interval, burstOffset, n).Int64Slice()
	if err != nil {
		return Result{}, cacheUnavailable(fmt.Errorf("ratelimit: redis: %w: %w", fluxauth.ErrUnavailable, err))
	}
	if len(v) != 4 {
		return Result{}, fmt.Errorf("ratelimit: redis: unexpected script reply %v", v)
	}
	return Result{
		Allowed:    v[0] == 1,
		Limit:      l.Burst,
		Remaining:  int(v[1]),
		RetryAfter: micros(v[2]),
		ResetAfter: micros(v[3]),
	}, nil
}

func cacheUnavailable(err error) error {
	return fluxauth.Wrap(fluxauth.ECacheUnavailable, "The service is temporarily unavailable.", err)
}
