package revocation

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
)

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
