package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var _ Limiter = (*Memory)(nil)

// memoryShards spreads keys over independently locked maps so that concurrent requests for
// different keys rarely wait on each other.
const memoryShards = 64

// sweepEvery is how often a shard drops its rested keys. A key is rested (and equivalent to an
// absent one) once its tat has passed, so memory holds only keys active within their own window,
// plus at most this long.
const sweepEvery = time.Minute

// Memory is the in-process limiter: one instance's own counters. It is what Fallback uses while Redis
// is unavailable, and the whole limiter for a single instance (the laptop setup).
type Memory struct {
	clock  fluxauth.Clock
	seed   maphash.Seed
	shards [memoryShards]memoryShard
	// thresholds is the state of Note (threshold.go).
	thresholds thresholds
}

type memoryShard struct {
	mu        sync.Mutex
	tats      map[string]int64 // key → tat, Unix microseconds
	lastSweep int64
}

// NewMemory returns an empty in-process limiter reading time from clock (fluxauth.SystemClock{} in
// production; tests step a fake one).
func NewMemory(clock fluxauth.Clock) *Memory {
	m := &Memory{clock: clock, seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].tats = map[string]int64{}
	}
	return m
}

func (m *Memory) shard(key string) *memoryShard {
	return &m.shards[maphash.String(m.seed, key)%memoryShards]
}

// Allow consumes one event on key if l allows it.
func (m *Memory) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	return m.decide(key, l, 1)
}

// Peek reports what Allow would decide now without consuming.
func (m *Memory) Peek(ctx context.Context, key string, l Limit) (Result, error) {
	return m.decide(key, l, 0)
}

// AllowAll consumes one event on each check's key in order, stopping at the first refusal.
func (m *Memory) AllowAll(ctx context.Context, checks ...Check) ([]Result, error) {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		res, err := m.decide(c.Key, c.Limit, 1)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
		if !res.Allowed {
			break
		}
	}
	return out, nil
}

// Reset forgets key.
func (m *Memory) Reset(ctx context.Context, key string) error {
	s := m.shard(key)
	s.mu.Lock()
	delete(s.tats, key)
	s.mu.Unlock()
	return nil
}

// Len returns the number of keys held, rested ones not yet swept included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}

func (m *Memory) decide(key string, l Limit, n int) (Result, error) {
	l, limited, err := l.normalize()
	if err != nil || !limited {
		return unlimited, err
	}
	now := m.clock.Now().UnixMicro()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Lazy sweep instead of a janitor goroutine: no Close to forget, and the cost (one pass over a
	// shard per minute) is paid by the traffic that filled it.
	if now-s.lastSweep >= sweepEvery.Microseconds() {
		for k, tat := range s.tats {
			if tat <= now {
				delete(s.tats, k)
			}
		}
		s.lastSweep = now
	}
	res, tat, store := gcra(l, s.tats[key], now, n)
	if store {
		s.tats[key] = tat
	}
	return res, nil
}
