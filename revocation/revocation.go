// Package revocation answers, on every instance, whether a session has been ended, so that the
// session's access tokens stop working before they expire. Two implementations share one contract:
// Redis, which keeps the hot path free of database reads, and the database behind a short cache for
// deployments without Redis.
package revocation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
)

// Checker is what a revocation list looks up in the database.
type Checker interface {
	SessionRevoked(ctx context.Context, sessionID string) (revoked bool, userID string, err error)
}

// DB answers from the database, caching each answer for TTL. A revocation therefore reaches every
// instance within TTL, and a hot session costs one query per TTL instead of one per request.
type DB struct {
	Store Checker
	TTL   time.Duration
	Clock fluxauth.Clock

	mu      sync.Mutex
	entries map[string]entry
	swept   time.Time
}

type entry struct {
	revoked bool
	at      time.Time
}

// NewDB returns a database-backed list whose answers are at most ttl old.
func NewDB(store Checker, ttl time.Duration, clock fluxauth.Clock) *DB {
	return &DB{Store: store, TTL: ttl, Clock: clock, entries: map[string]entry{}}
}

// Announce forgets the cached answer; the database row, written by the revocation itself, is the
// record.
func (d *DB) Announce(ctx context.Context, sessionID string, until time.Time) error {
	d.mu.Lock()
	d.entries[sessionID] = entry{revoked: true, at: d.Clock.Now()}
	d.mu.Unlock()
	return nil
}

// IsRevoked reports whether the session was ended. A session that never existed counts as revoked.
func (d *DB) IsRevoked(ctx context.Context, sessionID string) (bool, error) {
	now := d.Clock.Now()
	d.mu.Lock()
	e, ok := d.entries[sessionID]
	if ok && e.revoked {
		d.mu.Unlock()
		return true, nil
	}
	if ok && now.Sub(e.at) < d.TTL {
		d.mu.Unlock()
		return false, nil
	}
	d.mu.Unlock()
	revoked, _, err := d.Store.SessionRevoked(ctx, sessionID)
	if errors.Is(err, fluxauth.ErrNotFound) {
		revoked, err = true, nil
	}
	if err != nil {
		return false, err
	}
	d.mu.Lock()
	d.entries[sessionID] = entry{revoked: revoked, at: now}
	d.sweepLocked(now)
	d.mu.Unlock()
	return revoked, nil
}

// sweepLocked drops stale live answers so the cache stays as small as the set of busy sessions.
// Revoked answers stay until their access tokens could have expired anyway (one hour is beyond any
// access-token lifetime we allow).
func (d *DB) sweepLocked(now time.Time) {
	if now.Sub(d.swept) < time.Minute {
		return
	}
	d.swept = now
	for k, e := range d.entries {
		if (!e.revoked && now.Sub(e.at) >= d.TTL) || now.Sub(e.at) > time.Hour {
			delete(d.entries, k)
		}
	}
}

// Redis keeps revoked session IDs in Redis with an expiry equal to the longest life of their access
// tokens, so every instance sees a revocation at once without reading the database.
type Redis struct {
	Client *redis.Client
	Prefix string
	Clock  fluxauth.Clock
	// Fallback answers when Redis does not; revocations are in the database too, so nothing is lost.
	Fallback *DB
}

func (r *Redis) key(sessionID string) string { return r.Prefix + "revoked:" + sessionID }

// Announce records the session in Redis until its access tokens expire.
func (r *Redis) Announce(ctx context.Context, sessionID string, until time.Time) error {
	if r.Fallback != nil {
		_ = r.Fallback.Announce(ctx, sessionID, until)
	}
	ttl := until.Sub(r.Clock.Now())
	if ttl <= 0 {
		return nil
	}
	if err := r.Client.Set(ctx, r.key(sessionID), "1", ttl).Err(); err != nil {
		return fmt.Errorf("revocation: redis set: %w", err)
	}
	return nil
}

// IsRevoked is one Redis GET; when Redis fails, the database answers.
func (r *Redis) IsRevoked(ctx context.Context, sessionID string) (bool, error) {
	n, err := r.Client.Exists(ctx, r.key(sessionID)).Result()
	if err != nil {
		if r.Fallback != nil {
			return r.Fallback.IsRevoked(ctx, sessionID)
		}
		return false, fmt.Errorf("revocation: redis: %w", err)
	}
	return n > 0, nil
}
