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
// disagree still share one limit. A key expires when it would be rested, so Redis holds only active
// keys. It takes several keys so that a request's limits cost one round trip: it decides them in
// order and stops at the first refusal, charging none after it (AllowAll).
//
// KEYS[i] key i; ARGV[3i-2] its interval µs, ARGV[3i-1] burst offset µs, ARGV[3i] n (0 peeks).
// Returns, for each key decided, {allowed 0|1, remaining, retry_after µs, reset_after µs}, flat.
var gcraScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local burst_offset = tonumber(ARGV[3 * i - 1])
  local n = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call("GET", key) or "") or now
  if tat < now then tat = now end
  if n == 0 then
    local diff = now - (tat - burst_offset)
    local remaining = math.floor(diff / interval)
    if remaining >= 1 then
      table.insert(out, 1); table.insert(out, remaining); table.insert(out, 0)
    else
      table.insert(out, 0); table.insert(out, remaining); table.insert(out, interval - diff)
    end
    table.insert(out, tat - now)
  else
    local new_tat = tat + interval * n
    local diff = now - (new_tat - burst_offset)
    if diff < 0 then
      table.insert(out, 0); table.insert(out, 0); table.insert(out, -diff); table.insert(out, tat - now)
      return out
    end
    redis.call("SET", key, string.format("%.0f", new_tat), "PX", math.ceil((new_tat - now) / 1000))
    table.insert(out, 1); table.insert(out, math.floor(diff / interval)); table.insert(out, 0)
    table.insert(out, new_tat - now)
  end
end
return out
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
	res, err := r.run(ctx, n, Check{Key: key, Limit: l})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// AllowAll consumes one event on each check's key in order, stopping at the first refusal, in one
// script call.
func (r *Redis) AllowAll(ctx context.Context, checks ...Check) ([]Result, error) {
	return r.run(ctx, 1, checks...)
}

// run decides checks in order with n events each (0 peeks), stopping at the first refusal; checks
// whose limit is off are decided here without asking Redis. One script call for all the others.
func (r *Redis) run(ctx context.Context, n int, checks ...Check) ([]Result, error) {
	out := make([]Result, len(checks))
	bursts := make([]int, len(checks))
	keys := make([]string, 0, len(checks))
	args := make([]any, 0, 3*len(checks))
	asked := make([]int, 0, len(checks)) // indexes of the checks sent to Redis
	for i, c := range checks {
		l, limited, err := c.Limit.normalize()
		if err != nil {
			return nil, err
		}
		if !limited {
			out[i] = unlimited
			continue
		}
		bursts[i] = l.Burst
		interval, burstOffset := l.intervals()
		keys = append(keys, r.prefix+c.Key)
		args = append(args, interval, burstOffset, n)
		asked = append(asked, i)
	}
	if len(keys) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := gcraScript.Run(ctx, r.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, cacheUnavailable(fmt.Errorf("ratelimit: redis: %w: %w", fluxauth.ErrUnavailable, err))
	}
	if len(v) == 0 || len(v)%4 != 0 || len(v)/4 > len(asked) {
		return nil, fmt.Errorf("ratelimit: redis: unexpected script reply %v", v)
	}
	for k := 0; k < len(v)/4; k++ {
		i := asked[k]
		out[i] = Result{
			Allowed:    v[4*k] == 1,
			Limit:      bursts[i],
			Remaining:  int(v[4*k+1]),
			RetryAfter: micros(v[4*k+2]),
			ResetAfter: micros(v[4*k+3]),
		}
		if !out[i].Allowed {
			return out[:i+1], nil
		}
	}
	if len(v)/4 < len(asked) {
		return nil, fmt.Errorf("ratelimit: redis: script stopped early without a refusal: %v", v)
	}
	return out, nil
}

func cacheUnavailable(err error) error {
	return fluxauth.Wrap(fluxauth.ECacheUnavailable, "The service is temporarily unavailable.", err)
}
