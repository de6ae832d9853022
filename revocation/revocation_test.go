package revocation_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/revocation"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

type list interface {
	Announce(ctx context.Context, sessionID string, until time.Time) error
	IsRevoked(ctx context.Context, sessionID string) (bool, error)
}

// session inserts a live session and returns its ID.
func session(tb testing.TB, store fluxauth.Store, now time.Time) string {
	tb.Helper()
	sid := uuid.NewString()
	err := store.Update(context.Background(), func(tx fluxauth.Tx) error {
		return tx.InsertRefreshToken(context.Background(), &fluxauth.RefreshToken{
			ID: uuid.NewString(), SessionID: sid, UserID: "u1", TokenHash: uuid.NewString(),
			SessionCreatedAt: now, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour),
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return sid
}

func revokeInStore(tb testing.TB, store fluxauth.Store, sid string, now time.Time) {
	tb.Helper()
	err := store.Update(context.Background(), func(tx fluxauth.Tx) error {
		_, err := tx.RevokeSession(context.Background(), sid, now, "test")
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func redisClient(tb testing.TB) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(testenv.RedisURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	return c
}

// The contract: a revocation announced on one instance is seen by another at once (Redis) or
// within the cache TTL (database); a live session is live; an unknown session is revoked.
func TestContract(t *testing.T) {
	impls := map[string]func(t *testing.T, store fluxauth.Store, clock *testenv.Clock) (a, b list){
		"database": func(t *testing.T, store fluxauth.Store, clock *testenv.Clock) (list, list) {
			return revocation.NewDB(store, 500*time.Millisecond, clock), revocation.NewDB(store, 500*time.Millisecond, clock)
		},
		"redis": func(t *testing.T, store fluxauth.Store, clock *testenv.Clock) (list, list) {
			rdb := redisClient(t)
			prefix := "fluxauth-test:" + uuid.NewString() + ":"
			mk := func() list {
				return &revocation.Redis{Client: rdb, Prefix: prefix, Clock: clock, Fallback: revocation.NewDB(store, 500*time.Millisecond, clock)}
			}
			return mk(), mk()
		},
	}
	for name, mk := range impls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := sqlitetest.MustOpenDB(t)
			clock := testenv.NewClock(time.Now())
			a, b := mk(t, store, clock)
			sid := session(t, store, clock.Now())
			for _, l := range []list{a, b} {
				if revoked, err := l.IsRevoked(ctx, sid); err != nil || revoked {
					t.Fatalf("live session reported revoked: %v %v", revoked, err)
				}
			}
			revokeInStore(t, store, sid, clock.Now())
			if err := a.Announce(ctx, sid, clock.Now().Add(15*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if revoked, _ := a.IsRevoked(ctx, sid); !revoked {
				t.Fatal("the announcing instance does not see its own revocation")
			}
			clock.Advance(500 * time.Millisecond)
			if revoked, err := b.IsRevoked(ctx, sid); err != nil || !revoked {
				t.Fatalf("another instance missed the revocation after 500ms: %v %v", revoked, err)
			}
			if revoked, err := a.IsRevoked(ctx, uuid.NewString()); err != nil || (name == "database" && !revoked) {
				t.Fatalf("unknown session: %v %v", revoked, err)
			}
		})
	}
}

func TestRedisRevocationIsSeenAtOnceWithoutTheDatabase(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	rdb := redisClient(t)
	prefix := "fluxauth-test:" + uuid.NewString() + ":"
	a := &revocation.Redis{Client: rdb, Prefix: prefix, Clock: clock}
	b := &revocation.Redis{Client: rdb, Prefix: prefix, Clock: clock}
	sid := session(t, store, clock.Now())
	if err := a.Announce(ctx, sid, clock.Now().Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if revoked, err := b.IsRevoked(ctx, sid); err != nil || !revoked {
		t.Fatalf("b: %v %v", revoked, err)
	}
	ttl := rdb.TTL(ctx, prefix+"revoked:"+sid).Val()
	if ttl <= 14*time.Minute || ttl > 15*time.Minute {
		t.Fatalf("the entry should live as long as the access tokens: %s", ttl)
	}
}

func TestRedisDownFallsBackToTheDatabase(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer dead.Close()
	l := &revocation.Redis{Client: dead, Prefix: "x:", Clock: clock, Fallback: revocation.NewDB(store, 0, clock)}
	sid := session(t, store, clock.Now())
	revokeInStore(t, store, sid, clock.Now())
	if revoked, err := l.IsRevoked(ctx, sid); err != nil || !revoked {
		t.Fatalf("fallback: %v %v", revoked, err)
	}
}
