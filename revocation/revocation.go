// Package revocation answers, on every instance, whether a session has been ended, so that the
// session's access tokens stop working before they expire, and who a session belongs to. The
// database is the record: a revocation is a committed row before anyone announces it. Two lists
// share one contract (Announce, IsRevoked, Owner):
//
// DB answers from the database behind a short in-process cache (TTL), so a revocation reaches every
// instance within TTL and a busy session costs one query per TTL. Concurrent misses for one session
// share one query (singleflight). The same query yields the session's owner, which never changes,
// so Owner is answered from a bounded in-process cache without a read of its own.
//
// Redis is a fast path in front of DB: a revoked session is a key that lives as long as the
// session's access tokens, so every instance sees a revocation at once, and a check is one round
// trip with no database read. Redis is believed only when it can be:
//
//   - Unreachable (an error, or no answer within the breaker's timeout): the check goes to DB. Every
//     Redis call goes through a breaker (internal/breaker), shared with the rate limiter: once
//     either has seen Redis fail, Redis is skipped but for one probe a second, so an outage does not
//     cost every request a timeout. DB's answers may then be up to its TTL old, as without Redis.
//   - Announcement failed: the announcing instance keeps the revocation in a bounded queue that Run
//     re-announces every RetryInterval (Flush, which serve also calls at shutdown), dropping entries
//     whose access tokens have expired anyway. Should the queue overflow, the dropped revocation is
//     not lost: Redis is marked untrusted (below) until its tokens have expired.
//   - Lost its data (a restart, since it keeps nothing on disk; a failover to an empty replica; a
//     flush): a sentinel key, <prefix>revocation:trusted-from, holds the time from which Redis may be
//     believed, and is read in the same MGET as the session's key. When it is missing, the instance
//     that notices sets it to now + Window (the access-token TTL plus leeway: the time after which no
//     access token issued before the loss can be alive) and every instance, reading the same key,
//     uses DB until then. Revocations are written to Redis throughout, so once the window has passed
//     Redis holds every revocation whose tokens may still be alive. The sentinel is only ever moved
//     later (a script keeps the maximum), never earlier. A first deployment finds no sentinel
//     either, and so starts with one window of database checks.
//
// What this does not cover: an instance that cannot reach Redis while others can, and that stops
// before its queue is re-announced, leaves the others believing Redis until the revoked session's
// access tokens expire (at most TTL plus leeway); and Redis must keep its keys until they expire
// (maxmemory-policy noeviction, its default), since an evicted key leaves no trace to notice.
// Instances' clocks are assumed to agree within the token leeway, since they compare their own time
// with the sentinel.
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
