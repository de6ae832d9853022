// Package revocation answers, on every instance, whether a session has been ended (so its access
// tokens stop working before they expire) and who a session belongs to: DB from the database behind
// a short cache, Redis as a fast path in front of it, believed only when it can be. How and why:
// docs/architecture.md#revocation.
package revocation

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/fluxstudio/fluxauth"
)

// Checker is what a revocation list looks up in the database.
type Checker interface {
	SessionRevoked(ctx context.Context, sessionID string) (revoked bool, userID string, err error)
}

// DefaultOwnerCacheSize bounds the session → owner cache: about 150 bytes an entry, so ~10 MiB, and
// more than the sessions active at once on one instance.
const DefaultOwnerCacheSize = 1 << 16

// queryTimeout bounds one shared database lookup. The lookup runs apart from the request that
// started it, since other requests wait for it too and one client hanging up must not fail them.
const queryTimeout = 5 * time.Second

// DB answers from the database, caching each answer for TTL. Build it with NewDB.
type DB struct {
	Store Checker
	TTL   time.Duration
	Clock fluxauth.Clock
	// OwnerCacheSize bounds the session → owner cache; past it an arbitrary entry is dropped (it only
	// costs that session one more query).
	OwnerCacheSize int

	flight singleflight.Group

	mu      sync.Mutex
	entries map[string]entry
	owners  map[string]string
	swept   time.Time
}

type entry struct {
	revoked bool
	at      time.Time
}

// answer is one database lookup.
type answer struct {
	revoked bool
	owner   string
	found   bool
}

// NewDB returns a database-backed list whose answers are at most ttl old.
func NewDB(store Checker, ttl time.Duration, clock fluxauth.Clock) *DB {
	return &DB{
		Store: store, TTL: ttl, Clock: clock, OwnerCacheSize: DefaultOwnerCacheSize,
		entries: map[string]entry{}, owners: map[string]string{},
	}
}

// Announce remembers the revocation on this instance at once; other instances find it in the
// database, where the revocation itself wrote it, within TTL.
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
	d.mu.Unlock()
	if ok && (e.revoked || now.Sub(e.at) < d.TTL) {
		return e.revoked, nil
	}
	a, err := d.lookup(ctx, sessionID)
	return a.revoked, err
}

// knownRevoked reports whether this instance already knows the session ended, without a query.
func (d *DB) knownRevoked(sessionID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.entries[sessionID].revoked
}

// Owner returns the ID of the user the session belongs to; fluxauth.ErrNotFound if the session
// never existed. A session's owner never changes, so a cached one is answered without a query.
func (d *DB) Owner(ctx context.Context, sessionID string) (string, error) {
	d.mu.Lock()
	owner, ok := d.owners[sessionID]
	d.mu.Unlock()
	if ok {
		return owner, nil
	}
	a, err := d.lookup(ctx, sessionID)
	if err != nil {
		return "", err
	}
	if !a.found {
		return "", fluxauth.ErrNotFound
	}
	return a.owner, nil
}

// lookup asks the database, once for all concurrent callers asking about the same session, and
// caches the answer.
func (d *DB) lookup(ctx context.Context, sessionID string) (answer, error) {
	ch := d.flight.DoChan(sessionID, func() (any, error) {
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
		defer cancel()
		at := d.Clock.Now()
		revoked, owner, err := d.Store.SessionRevoked(qctx, sessionID)
		a := answer{revoked: revoked, owner: owner, found: true}
		if errors.Is(err, fluxauth.ErrNotFound) {
			a, err = answer{revoked: true}, nil
		}
		if err != nil {
			return answer{}, err
		}
		d.remember(sessionID, a, at)
		return a, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return answer{}, r.Err
		}
		return r.Val.(answer), nil
	case <-ctx.Done():
		return answer{}, ctx.Err()
	}
}

func (d *DB) remember(sessionID string, a answer, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// A revocation announced while the query ran is newer than its answer: keep it.
	if !d.entries[sessionID].revoked {
		d.entries[sessionID] = entry{revoked: a.revoked, at: at}
	}
	if a.found {
		if _, ok := d.owners[sessionID]; !ok {
			for k := range d.owners {
				if len(d.owners) < max(1, d.OwnerCacheSize) {
					break
				}
				delete(d.owners, k)
			}
		}
		d.owners[sessionID] = a.owner
	}
	d.sweepLocked(at)
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
