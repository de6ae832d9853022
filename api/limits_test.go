package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

func TestSuccessfulLoginClearsTheLockoutCount(t *testing.T) {
	lockout := ratelimit.Limit{Rate: 1, Period: 15 * time.Minute, Burst: 10}
	e := newEnv(t, withConfig(func(c *config.Config) { c.Rules = ratelimit.Rules{Lockout: lockout} }))
	e.signup(t, "owner@example.com")
	wrong := map[string]string{"email": "owner@example.com", "password": "wrong password"}
	for i := range lockout.Burst - 1 {
		if res := e.do(t, "POST", "/api/auth/login", wrong); res.Status != 401 {
			t.Fatalf("failure %d: %d %s", i+1, res.Status, res.Body)
		}
	}
	if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "owner@example.com", "password": "correct horse battery"}); res.Status != 200 {
		t.Fatalf("the owner's login: %d %s", res.Status, res.Body)
	}
	for i := range lockout.Burst {
		if res := e.do(t, "POST", "/api/auth/login", wrong); res.Status != 401 {
			t.Fatalf("failure %d after a success: %d %s; the success did not clear the count", i+1, res.Status, res.Body)
		}
	}
	if res := e.do(t, "POST", "/api/auth/login", wrong); res.Status != 429 {
		t.Fatalf("failure %d in a row after the success: %d, want 429", lockout.Burst+1, res.Status)
	}
}

func TestRateLimitHeadersDescribeTheTightestLimit(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) {
		c.Rules = ratelimit.Rules{
			LoginIPEmail: ratelimit.Limit{Rate: 3, Period: time.Minute, Burst: 3},
			LoginIP:      ratelimit.Limit{Rate: 50, Period: time.Minute, Burst: 50},
		}
	}))
	res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "tight@example.com", "password": "wrong password"})
	if res.Header.Get("RateLimit-Limit") != "3" || res.Header.Get("RateLimit-Remaining") != "2" {
		t.Fatalf("headers %v; want the per-email limit (3, 2 left), not the per-IP one", res.Header)
	}
}

func TestAnAddressOverItsLoginLimitCreatesNoMorePerEmailKeys(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) {
		c.Rules = ratelimit.Rules{
			LoginIP:      ratelimit.Limit{Rate: 3, Period: time.Minute, Burst: 3},
			LoginIPEmail: ratelimit.Limit{Rate: 5, Period: time.Minute, Burst: 5},
		}
	}))
	limiter := e.Accounts.Limiter.(*ratelimit.Memory)
	for i := range 3 {
		e.do(t, "POST", "/api/auth/login", map[string]string{"email": fmt.Sprintf("spray%d@example.com", i), "password": "wrong password"})
	}
	keys := limiter.Len()
	for i := range 50 {
		res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": fmt.Sprintf("more%d@example.com", i), "password": "wrong password"})
		if res.Status != 429 {
			t.Fatalf("login %d past the per-IP limit: %d", i, res.Status)
		}
	}
	if n := limiter.Len(); n > keys+1 { // the rate_limit_exceeded dedupe may add one
		t.Fatalf("refused logins grew the limiter from %d to %d keys", keys, n)
	}
}
