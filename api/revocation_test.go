package api_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/revocation"
	"github.com/fluxstudio/fluxauth/token"
)

// withRedisRevocations makes an instance check revocations as serve does with Redis: Redis in front
// of the database behind a 500ms cache.
func withRedisRevocations(tb testing.TB, url, prefix string) envOption {
	tb.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	opts.ContextTimeoutEnabled = true
	opts.DialerRetries = 1
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { rdb.Close() })
	return withAccounts(func(acc *account.Service) {
		acc.Revocations = revocation.NewRedis(rdb, revocation.NewDB(acc.Store, 500*time.Millisecond, acc.Clock), revocation.RedisConfig{
			Prefix: prefix, Window: acc.Tokens.TTL() + token.MaxLeeway, Timeout: time.Second, Clock: acc.Clock,
		})
	})
}

// redisInstances are two instances on one PostgreSQL database and one private Redis that Redis is
// believed for: the first check found no sentinel, as on a first deployment, and its window passed.
func redisInstances(t *testing.T, srv *testenv.RedisServer) (*env, *env) {
	t.Helper()
	a, b := twoInstances(t, withRedisRevocations(t, srv.URL(), "fluxauth-test:"+uuid.NewString()+":"))
	first := a.signup(t, "first-"+uuid.NewString()+"@example.com")
	if res := a.do(t, "GET", "/api/auth/me", nil, bearer(first.AccessToken)...); res.Status != 200 {
		t.Fatalf("me: %d %s", res.Status, res.Body)
	}
	a.Clock.Advance(a.Accounts.Tokens.TTL() + token.MaxLeeway + time.Second)
	return a, b
}

func TestARevocationBeforeRedisLostItsDataHoldsOnEveryInstance(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, b := redisInstances(t, srv)
	ar := a.signup(t, "kept-out@example.com")
	if res := b.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.Status != 200 {
		t.Fatalf("before: %d %s", res.Status, res.Body)
	}
	if res := a.do(t, "POST", "/api/auth/logout", nil, bearer(ar.AccessToken)...); res.Status != 204 {
		t.Fatalf("logout: %d %s", res.Status, res.Body)
	}
	if res := b.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.errorCode(t) != "session_revoked" {
		t.Fatalf("through Redis: %d %s", res.Status, res.Body)
	}
	srv.Stop()
	srv.Start() // empty
	for name, e := range map[string]*env{"a": a, "b": b} {
		if res := e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.errorCode(t) != "session_revoked" {
			t.Fatalf("instance %s after Redis restarted empty: %d %s", name, res.Status, res.Body)
		}
	}
}

func TestARevocationRedisDidNotTakeReachesTheOtherInstanceWithinTheCacheWindow(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, b := redisInstances(t, srv)
	ar := a.signup(t, "unannounced@example.com")
	srv.Stop()
	if res := b.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.Status != 200 {
		t.Fatalf("before, Redis down: %d %s", res.Status, res.Body) // b's database cache now says live
	}
	if res := a.do(t, "POST", "/api/auth/logout", nil, bearer(ar.AccessToken)...); res.Status != 204 {
		t.Fatalf("logout with Redis down: %d %s", res.Status, res.Body)
	}
	a.Clock.Advance(500 * time.Millisecond)
	if res := b.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.errorCode(t) != "session_revoked" {
		t.Fatalf("instance b after its cache window: %d %s", res.Status, res.Body)
	}
}
