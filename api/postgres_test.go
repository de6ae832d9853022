package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/token"
)

func migratedDatabase(tb testing.TB) string {
	tb.Helper()
	url := postgrestest.CreateDatabase(tb)
	if _, err := postgrestest.Open(tb, url).MigrateUp(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return url
}

func TestParallelRefreshesLeaveOneChainOnPostgreSQL(t *testing.T) {
	parallelRefresh(t, []*env{newEnv(t, withStore(postgrestest.MustOpenDB(t)))}, 20)
}

// twoInstances are two fluxauth servers with their own pools on one PostgreSQL database and one key
// set, as behind a load balancer.
func twoInstances(t *testing.T, opts ...envOption) (*env, *env) {
	t.Helper()
	url := migratedDatabase(t)
	clock := testenv.NewClock(time.Now())
	ks, err := token.GenerateKeySet(clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := newEnv(t, append([]envOption{withStore(postgrestest.Open(t, url)), withKeys(ks), withClock(clock)}, opts...)...)
	b := newEnv(t, append([]envOption{withStore(postgrestest.Open(t, url)), withKeys(ks), withClock(clock)}, opts...)...)
	return a, b
}

func TestParallelRefreshesAcrossTwoInstancesLeaveOneChain(t *testing.T) {
	a, b := twoInstances(t)
	parallelRefresh(t, []*env{a, b}, 20)
}

func TestRevocationReachesEveryInstanceWithinTheCacheWindow(t *testing.T) {
	a, b := twoInstances(t, withConfig(func(c *config.Config) { c.RevocationCacheTTL = 500 * time.Millisecond }))
	ar := a.signup(t, "everywhere@example.com")
	if res := b.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.Status != 200 {
		t.Fatalf("instance b before: %d", res.Status) // b now caches "live"
	}
	if res := a.do(t, "POST", "/api/auth/logout", nil, bearer(ar.AccessToken)...); res.Status != 204 {
		t.Fatalf("logout %d", res.Status)
	}
	a.Clock.Advance(500 * time.Millisecond)
	if res := b.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.errorCode(t) != "session_revoked" {
		t.Fatalf("instance b after the cache window: %d %s", res.Status, res.Body)
	}
}

func TestReadyzFollowsPostgreSQLDownAndBackWithoutRestart(t *testing.T) {
	url := migratedDatabase(t)
	proxy := testenv.NewProxy(t, "127.0.0.1:5432")
	db := postgrestest.Open(t, proxy.URL(url))
	e := newEnv(t, withStore(db))
	status := func() int {
		res, err := http.Get(e.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := status(); s != 200 {
		t.Fatalf("up: %d", s)
	}
	proxy.Stop()
	if s := status(); s != 503 {
		t.Fatalf("PostgreSQL down: %d, want 503", s)
	}
	proxy.Start()
	deadline := time.Now().Add(10 * time.Second)
	for status() != 200 {
		if time.Now().After(deadline) {
			t.Fatal("readyz did not recover after PostgreSQL came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTenThousandEventsFromConcurrentRequestsAreAllKeptOnPostgreSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	recordTenThousand(t, newEnv(t, withStore(postgrestest.MustOpenDB(t)), withConfig(func(c *config.Config) { c.Rules = ratelimit.Rules{} })))
}

func TestDatabaseDownAnswers503AndChangesNothing(t *testing.T) {
	url := migratedDatabase(t)
	proxy := testenv.NewProxy(t, "127.0.0.1:5432")
	e := newEnv(t, withStore(postgrestest.Open(t, proxy.URL(url))))
	e.signup(t, "before@example.com")
	proxy.Stop()
	res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "before@example.com", "password": "correct horse battery"})
	if res.Status != 503 || res.errorCode(t) != "database_unavailable" {
		t.Fatalf("login with the database down: %d %s", res.Status, res.Body)
	}
	res = e.do(t, "POST", "/api/auth/signup", map[string]string{"email": "during@example.com", "password": "correct horse battery", "name": "D"})
	if res.Status != 503 {
		t.Fatalf("signup with the database down: %d %s", res.Status, res.Body)
	}
	proxy.Start()
	if _, err := postgrestest.Open(t, url).UserByEmail(context.Background(), "during@example.com"); err == nil {
		t.Fatal("a failed signup left a user behind")
	}
}
