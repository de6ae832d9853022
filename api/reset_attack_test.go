package api_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// countingHasher counts the hash computations the rules ask for (Pad, which computes none, passes
// through uncounted).
type countingHasher struct {
	account.Hasher
	n atomic.Int64
}

func (h *countingHasher) Hash(ctx context.Context, pw string) (string, error) {
	h.n.Add(1)
	return h.Hasher.Hash(ctx, pw)
}

func (h *countingHasher) Verify(ctx context.Context, hash, pw string) (bool, bool, error) {
	h.n.Add(1)
	return h.Hasher.Verify(ctx, hash, pw)
}

// withCountingHasher puts h between the rules and the server's hasher.
func withCountingHasher(h *countingHasher) envOption {
	return withDeps(func(d *app.Deps) {
		d.WrapHasher = func(inner account.Hasher) account.Hasher { h.Hasher = inner; return h }
	})
}

func TestABogusResetTokenCostsNoHash(t *testing.T) {
	h := &countingHasher{}
	m := newMailEnv(t, nil, withCountingHasher(h))
	m.signup(t, "no-hash@example.com")
	before := h.n.Load()
	wantCode(t, "reset with a bogus token", m.reset(t, "bogus-token-that-was-never-issued", newPassword), 400, fluxauth.EInvalidResetToken)
	wantCode(t, "reset with a bogus token and a refused password", m.reset(t, "bogus-token-that-was-never-issued", "short"), 400, fluxauth.EInvalidResetToken)
	if n := h.n.Load() - before; n != 0 {
		t.Fatalf("bogus-token resets computed %d hashes, want 0", n)
	}
}

func TestResetsFromOneIPAreLimited(t *testing.T) {
	e := newEnv(t)
	ip := "203.0.113.77"
	body := map[string]string{"token": "bogus-token-that-was-never-issued", "password": newPassword}
	for i := range 10 {
		wantCode(t, "reset "+strconv.Itoa(i+1), e.do(t, "POST", "/api/auth/password/reset", body, "X-Forwarded-For", ip), 400, fluxauth.EInvalidResetToken)
	}
	res := e.do(t, "POST", "/api/auth/password/reset", body, "X-Forwarded-For", ip)
	wantCode(t, "the 11th reset from one IP", res, http.StatusTooManyRequests, fluxauth.ERateLimited)
	if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	wantCode(t, "a reset from another IP", e.do(t, "POST", "/api/auth/password/reset", body, "X-Forwarded-For", "203.0.113.78"), 400, fluxauth.EInvalidResetToken)
}

func TestAResetTokenDiesAfterFiveRefusedPasswords(t *testing.T) {
	onStores(t, func(t *testing.T, store envOption) {
		m := newMailEnv(t, nil, store)
		m.signup(t, "five-tries@example.com")
		tok := m.requestReset(t, "five-tries@example.com", 2)
		for i := range 5 {
			wantCode(t, "refused password "+strconv.Itoa(i+1), m.reset(t, tok, "short"), 422, fluxauth.EValidation)
		}
		wantCode(t, "a valid password after five refused", m.reset(t, tok, newPassword), 400, fluxauth.EInvalidResetToken)
	})
}

func TestParallelRefusedResetsCountNoMoreThanFiveTries(t *testing.T) {
	onStores(t, func(t *testing.T, store envOption) {
		m := newMailEnv(t, nil, store, withConfig(func(c *config.Config) { c.Rules.ResetIP = ratelimit.Limit{} }))
		m.signup(t, "parallel-tries@example.com")
		tok := m.requestReset(t, "parallel-tries@example.com", 2)
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		start := make(chan struct{})
		for range 10 {
			wg.Go(func() {
				<-start
				res := m.reset(t, tok, "short")
				mu.Lock()
				statuses[res.Status]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if statuses[422] != 5 || statuses[400] != 5 {
			t.Fatalf("10 parallel refused resets answered %v, want 5×422 (tries) and 5×400 (token dead)", statuses)
		}
		wantCode(t, "a valid password after the parallel tries", m.reset(t, tok, newPassword), 400, fluxauth.EInvalidResetToken)
	})
}

// The audit of every unauthenticated endpoint that hashes: none does before its cheap checks
// (validation, rate limit, link-token lookup).
func TestNoUnauthenticatedEndpointHashesBeforeItsCheapChecks(t *testing.T) {
	h := &countingHasher{}
	m := newMailEnv(t, nil, withCountingHasher(h))
	m.signup(t, "audit@example.com")
	before := h.n.Load()
	bogus := "bogus-token-that-was-never-issued"
	for _, c := range []struct {
		what, path string
		body       map[string]string
		status     int
	}{
		{"signup refused by validation", "/api/auth/signup", map[string]string{"email": "not an address", "password": "short", "name": "X"}, 422},
		{"login without a password", "/api/auth/login", map[string]string{"email": "audit@example.com"}, 422},
		{"forgot", "/api/auth/password/forgot", map[string]string{"email": "audit@example.com"}, 202},
		{"reset with a bogus token", "/api/auth/password/reset", map[string]string{"token": bogus, "password": newPassword}, 400},
		{"verify with a bogus token and a password", "/api/auth/email/verify", map[string]string{"token": bogus, "email": "audit@example.com", "password": ownerPassword}, 400},
		{"verify without credentials", "/api/auth/email/verify", map[string]string{"token": bogus}, 401},
	} {
		wantStatus(t, c.what, m.do(t, "POST", c.path, c.body), c.status)
		if n := h.n.Load() - before; n != 0 {
			t.Fatalf("%s computed %d hashes, want 0", c.what, n)
		}
	}
}
