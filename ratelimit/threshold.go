package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
)

// Threshold counts events per key over a window and says when a key's count reaches a limit: what
// alerts such as "50 failed logins from one address in 5 minutes" are made of. Unlike a Limiter it
// refuses nothing; it only reports the crossing, once per key per window, so an alert fires once
// however long the condition lasts. Memory counts in process; Redis shares counts and crossings
// between instances, so 30 failures seen by one instance and 20 by another make 50.
//
// The count is a sliding-window estimate: events of the current fixed window (aligned to multiples
// of the period) plus those of the previous window, weighted by the part of it still inside the
// period that ends now and rounded up. It is exact while all events fall in one fixed window, never
// misses a burst that straddles two, and overcounts by at most one otherwise, for two counters per
// key whatever the traffic.
type Threshold interface {
	// Note adds n events to key and returns the count within the period ending now. crossed is true
	// for the one call, per key and period, on every instance sharing the state, that finds the
	// count at or above l.Rate with no crossing reported for key in the last l.Period. The zero
	// Limit never crosses.
	Note(ctx context.Context, key string, l Limit, n int) (count int, crossed bool, err error)
}

var (
	_ Threshold = (*Memory)(nil)
	_ Threshold = (*Redis)(nil)
	_ Threshold = (*Fallback)(nil)
)

// thresholdWindow is one key's two fixed windows.
type thresholdWindow struct {
	window  int64 // index of the current fixed window: unix µs / period µs
	current int64
	prev    int64
	expires int64 // unix µs after which the key holds nothing
}

// thresholds is Memory's threshold state. Thresholds are noted by an alerting goroutine, not by
// requests, so one lock is enough.
type thresholds struct {
	mu        sync.Mutex
	windows   map[string]*thresholdWindow
	fired     map[string]int64 // key → unix µs until which a crossing was reported
	lastSweep int64
}

// estimate is the sliding-window count: the current window's events plus the previous window's,
// weighted by how much of it the period ending at now still covers, rounded up.
func estimate(current, prev, period, elapsed int64) int64 {
	return current + (prev*(period-elapsed)+period-1)/period
}

// Note adds n events to key; see Threshold.
func (m *Memory) Note(ctx context.Context, key string, l Limit, n int) (int, bool, error) {
	if l.IsZero() || n <= 0 {
		return 0, false, nil
	}
	period := l.Period.Microseconds()
	if l.Rate <= 0 || period <= 0 {
		return 0, false, fmt.Errorf("ratelimit: invalid threshold %s", l)
	}
	now := m.clock.Now().UnixMicro()
	t := &m.thresholds
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.windows == nil {
		t.windows, t.fired = map[string]*thresholdWindow{}, map[string]int64{}
	}
	if now-t.lastSweep >= sweepEvery.Microseconds() {
		for k, w := range t.windows {
			if w.expires <= now {
				delete(t.windows, k)
			}
		}
		for k, until := range t.fired {
			if until <= now {
				delete(t.fired, k)
			}
		}
		t.lastSweep = now
	}
	idx := now / period
	w := t.windows[key]
	switch {
	case w == nil || w.window < idx-1:
		w = &thresholdWindow{window: idx}
		t.windows[key] = w
	case w.window == idx-1:
		w.window, w.prev, w.current = idx, w.current, 0
	}
	w.current += int64(n)
	w.expires = (idx + 2) * period
	count := estimate(w.current, w.prev, period, now-idx*period)
	crossed := false
	if count >= int64(l.Rate) && t.fired[key] <= now {
		t.fired[key] = now + period
		crossed = true
	}
	return int(min(count, math.MaxInt32)), crossed, nil
}

// thresholdScript is Memory.Note in Lua, run atomically by Redis on its own clock: counting and
// deciding the crossing are one step for every instance. KEYS[1] holds the windows (a hash: w, c,
// p), KEYS[2] marks a reported crossing until it expires.
//
// ARGV[1] period µs, ARGV[2] rate, ARGV[3] n. Returns {count, crossed 0|1}.
var thresholdScript = redis.NewScript(`
local period = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local idx = math.floor(now / period)
local h = redis.call("HMGET", KEYS[1], "w", "c", "p")
local w, c, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
if w == nil or w < idx - 1 then
  c, p = 0, 0
elseif w == idx - 1 then
  p, c = c, 0
end
c = c + n
redis.call("HSET", KEYS[1], "w", string.format("%.0f", idx), "c", c, "p", p)
redis.call("PEXPIRE", KEYS[1], math.ceil(2 * period / 1000))
local count = c + math.floor((p * (period - (now - idx * period)) + period - 1) / period)
local crossed = 0
if count >= rate and redis.call("SET", KEYS[2], "1", "NX", "PX", math.ceil(period / 1000)) then
  crossed = 1
end
return {count, crossed}
`)

// Note adds n events to key; see Threshold.
func (r *Redis) Note(ctx context.Context, key string, l Limit, n int) (int, bool, error) {
	if l.IsZero() || n <= 0 {
		return 0, false, nil
	}
	period := l.Period.Microseconds()
	if l.Rate <= 0 || period <= 0 {
		return 0, false, fmt.Errorf("ratelimit: invalid threshold %s", l)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := thresholdScript.Run(ctx, r.rdb, []string{r.prefix + "th:" + key, r.prefix + "thx:" + key}, period, l.Rate, n).Int64Slice()
	if err != nil {
		return 0, false, fmt.Errorf("ratelimit: redis threshold: %w: %w", fluxauth.ErrUnavailable, err)
	}
	if len(v) != 2 {
		return 0, false, fmt.Errorf("ratelimit: redis threshold: unexpected script reply %v", v)
	}
	return int(min(v[0], math.MaxInt32)), v[1] == 1, nil
}

// Note adds n events to key in Redis, or in memory while Redis fails: during an outage each
// instance counts only its own events, and may report a crossing Redis had already reported.
func (f *Fallback) Note(ctx context.Context, key string, l Limit, n int) (int, bool, error) {
	type noted struct {
		count   int
		crossed bool
	}
	res, err := fallbackDo(f, ctx, func(ctx context.Context, lim Limiter) (noted, error) {
		th, ok := lim.(Threshold)
		if !ok {
			return noted{}, fmt.Errorf("ratelimit: %T counts no thresholds", lim)
		}
		c, x, err := th.Note(ctx, key, l, n)
		return noted{c, x}, err
	})
	return res.count, res.crossed, err
}
