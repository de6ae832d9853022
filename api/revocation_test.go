package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/sqlite"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
	"github.com/fluxstudio/fluxauth/token"
)

// withRedisRevocations makes an instance check revocations as serve does with Redis: Redis in front
// of the database behind a 500ms cache.
func withRedisRevocations(url, prefix string) envOption {
	return func(e *envConfig) {
		withRedis(url, prefix)(e)
		e.cfg.RevocationCacheTTL = 500 * time.Millisecond
	}
}

// redisInstances are two instances on one PostgreSQL database and one private Redis that Redis is
// believed for: the first check found no sentinel, as on a first deployment, and its window passed.
func redisInstances(t *testing.T, srv *testenv.RedisServer) (*env, *env) {
	t.Helper()
	a, b := twoInstances(t, withRedisRevocations(srv.URL(), "fluxauth-test:"+uuid.NewString()+":"))
	first := a.signup(t, "first-"+uuid.NewString()+"@example.com")
	if res := a.do(t, "GET", "/api/auth/me", nil, bearer(first.AccessToken)...); res.Status != 200 {
		t.Fatalf("me: %d %s", res.Status, res.Body)
	}
	a.Clock.Advance(a.Accounts.Tokens.TTL() + token.MaxLeeway + time.Second)
	return a, b
}

func TestARevocationBeforeRedisLostItsDataHoldsOnAnotherInstance(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, b := redisInstances(t, srv)
	ar := a.signup(t, "kept-out@example.com")
	if res := b.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.Status != 200 {
		t.Fatalf("before: %d %s", res.Status, res.Body)
	}
	if res := a.do(t, "POST", "/api/auth/logout", nil, bearer(ar.AccessToken)...); res.Status != 204 {
		t.Fatalf("logout: %d %s", res.Status, res.Body)
	}
	// b has not looked since, and its database cache's last look has expired: only Redis knows.
	a.Clock.Advance(500 * time.Millisecond)
	srv.Stop()
	srv.Start() // empty
	if res := b.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.errorCode(t) != "session_revoked" {
		t.Fatalf("instance b after Redis restarted empty: %d %s", res.Status, res.Body)
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

// legacySecret is the HS256 secret other FluxStudio services share with fluxauth.
var legacySecret = []byte("a-legacy-shared-secret-of-32-bytes-at-least")

// hs256 is an issuer with the shared secret, as fluxauth runs with FLUXAUTH_JWT_ALG=HS256 and as
// any service holding the secret can build one.
func hs256(tb testing.TB, clock fluxauth.Clock) *token.Issuer {
	tb.Helper()
	iss, err := token.NewIssuer(token.Config{Issuer: "http://fluxauth.test", Audience: "fluxstudio", HMACSecret: legacySecret, Clock: clock})
	if err != nil {
		tb.Fatal(err)
	}
	return iss
}

func withHS256(tb testing.TB) envOption {
	tb.Helper()
	return withConfig(func(c *config.Config) {
		c.JWTAlg, c.JWTSecret = "HS256", string(legacySecret)
		c.Account.CheckSessionOwner = true // as config derives it for HS256
	})
}

func TestHS256TokenNamingAnotherUsersSessionIsRefused(t *testing.T) {
	e := newEnv(t, withHS256(t))
	victim := e.signup(t, "victim@example.com")
	attacker := e.signup(t, "attacker@example.com")
	// Another service holding the secret signs the attacker's sub with the victim's live session.
	forged, _, err := hs256(t, e.Clock).Sign(token.Claims{UserID: attacker.User.ID, SessionID: sidOf(t, victim.AccessToken)})
	if err != nil {
		t.Fatal(err)
	}
	res := e.do(t, "GET", "/api/auth/me", nil, bearer(forged)...)
	if res.Status != 401 || res.errorCode(t) != "invalid_token" {
		t.Fatalf("forged token: %d %s", res.Status, res.Body)
	}
	unknown, _, err := hs256(t, e.Clock).Sign(token.Claims{UserID: attacker.User.ID, SessionID: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	if res := e.do(t, "GET", "/api/auth/me", nil, bearer(unknown)...); res.Status != 401 || res.errorCode(t) != "invalid_token" {
		t.Fatalf("token naming no session: %d %s", res.Status, res.Body)
	}
	for who, ar := range map[string]*authResponse{"victim": victim, "attacker": attacker} {
		if res := e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.Status != 200 {
			t.Fatalf("%s's own token: %d %s", who, res.Status, res.Body)
		}
	}

	evs := e.events(t, fluxauth.EventSessionHijackAttempt)
	if len(evs) != 2 {
		t.Fatalf("%d session_hijack_attempt events, want 2 (the foreign session, the unknown one)", len(evs))
	}
	byReason := map[string]*fluxauth.SecurityEvent{}
	for _, ev := range evs {
		byReason[ev.Metadata["reason"].(string)] = ev
	}
	ev := byReason["access_token_session_of_another_user"]
	if ev == nil || ev.UserID != victim.User.ID || ev.Metadata["claimedUserId"] != attacker.User.ID || ev.Severity != fluxauth.SeverityCritical {
		t.Fatalf("event for the foreign session: %+v", ev)
	}
	raw, _ := json.Marshal(evs)
	for _, secret := range []string{forged, unknown, strings.Split(forged, ".")[2], string(legacySecret)} {
		if strings.Contains(string(raw)+e.Logs.String(), secret) {
			t.Fatal("the audit log or the server log carries a token or the secret")
		}
	}
}

// countingStore counts the session lookups the revocation and owner checks make.
type countingStore struct {
	*sqlite.DB
	sessionReads atomic.Int64
}

func (s *countingStore) SessionRevoked(ctx context.Context, sessionID string) (bool, string, error) {
	s.sessionReads.Add(1)
	return s.DB.SessionRevoked(ctx, sessionID)
}

// With Redis believed and the session's owner cached, /me reads no session from the database:
// its one read is the user itself.
func TestMeReadsNoSessionOnceTheOwnerIsCached(t *testing.T) {
	store := &countingStore{DB: sqlitetest.MustOpenDB(t)}
	e := newEnv(t, withStore(store), withHS256(t), withRedisRevocations(testenv.RedisURL(t), "fluxauth-test:"+uuid.NewString()+":"))
	first := e.signup(t, "first@example.com")
	e.do(t, "GET", "/api/auth/me", nil, bearer(first.AccessToken)...) // finds no sentinel: Redis is new
	e.Clock.Advance(e.Accounts.Tokens.TTL() + token.MaxLeeway + time.Second)

	ar := e.signup(t, "cached@example.com")
	if res := e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.Status != 200 {
		t.Fatalf("me: %d %s", res.Status, res.Body)
	}
	before := store.sessionReads.Load()
	for i := 0; i < 3; i++ {
		if res := e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.Status != 200 {
			t.Fatalf("me: %d %s", res.Status, res.Body)
		}
	}
	if n := store.sessionReads.Load() - before; n != 0 {
		t.Fatalf("%d session reads for three /me with the owner cached, want 0", n)
	}
}
