package token

import (
	"hash/maphash"
	"sync"
	"time"
)

// verifiedCache remembers tokens that verified, until they expire. An ES256 verification costs about
// 0.1 ms of CPU, and a client presents the same access token on every request for up to 15 minutes;
// a hit costs a map lookup. Only the exact string that verified can hit, so nothing is accepted that
// a full verification would not accept, except that key removal does not evict: keys are retired
// only after every token they signed has expired (KeyRetention).
type verifiedCache struct {
	seed   maphash.Seed
	shards [16]cacheShard
	limit  int // entries per shard
}

type cacheShard struct {
	mu sync.Mutex
	m  map[string]cachedClaims
}

type cachedClaims struct {
	claims Claims
	until  time.Time // expiry plus leeway: past it the entry is worthless
}

func newVerifiedCache(entries int) *verifiedCache {
	c := &verifiedCache{seed: maphash.MakeSeed(), limit: max(1, entries/16)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cachedClaims)
	}
	return c
}

func (c *verifiedCache) shard(tok string) *cacheShard {
	return &c.shards[maphash.String(c.seed, tok)%uint64(len(c.shards))]
}

// get and put treat a nil cache as off.
func (c *verifiedCache) get(tok string, now time.Time) (Claims, bool) {
	if c == nil {
		return Claims{}, false
	}
	s := c.shard(tok)
	s.mu.Lock()
	e, ok := s.m[tok]
	s.mu.Unlock()
	if !ok || !now.Before(e.until) {
		return Claims{}, false
	}
	return e.claims, true
}

func (c *verifiedCache) put(tok string, claims Claims, until, now time.Time) {
	if c == nil {
		return
	}
	s := c.shard(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.limit {
		// Full: drop what has expired, and if that frees nothing, an arbitrary entry (it only
		// costs that token one more verification).
		for k, e := range s.m {
			if !now.Before(e.until) {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < c.limit {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[tok] = cachedClaims{claims: claims, until: until}
}
