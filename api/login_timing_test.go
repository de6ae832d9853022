package api_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// Login answers do not tell an unknown address from an account, whatever the account's hash: an
// unknown address, an argon2id account (fluxauth's own, cheap in tests) and a bcrypt account at
// cost 8 (as the legacy server's users come in, far slower to verify here) answer wrong passwords
// in the same time, median against median. Every answer is padded to the slowest verification the
// stored hashes need, which the server learnt when it first verified the bcrypt hash.
func TestLoginAnswersTakeAsLongForUnknownArgon2AndBcryptAccounts(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) {
		c.Rules.Lockout, c.Rules.LoginIP, c.Rules.LoginIPEmail = ratelimit.Limit{}, ratelimit.Limit{}, ratelimit.Limit{}
	}))
	e.signup(t, "argon@example.com")
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), 8)
	if err != nil {
		t.Fatal(err)
	}
	now := e.Clock.Now()
	if err := e.Store.CreateUser(context.Background(), &fluxauth.User{ID: "42", Email: "bcrypt@example.com",
		UserType: fluxauth.UserTypeClient, PasswordHash: string(hash), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	emails := []string{"nobody@example.com", "argon@example.com", "bcrypt@example.com"}
	times := map[string][]time.Duration{}
	const rounds, warmUp = 31, 3
	for i := range rounds + warmUp {
		order := slices.Clone(emails)
		for range i % 3 { // each address in each position in turn, so load drift falls on all alike
			order = append(order[1:], order[0])
		}
		for _, email := range order {
			start := time.Now()
			res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": email, "password": "not the password"})
			d := time.Since(start)
			wantCode(t, "login "+email, res, 401, "invalid_credentials")
			if i >= warmUp {
				times[email] = append(times[email], d)
			}
		}
	}
	median := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	unknown, argon, bc := median(times[emails[0]]), median(times[emails[1]]), median(times[emails[2]])
	t.Logf("median login answer: unknown %v, argon2id %v, bcrypt cost 8 %v", unknown, argon, bc)
	lo, hi := min(unknown, argon, bc), max(unknown, argon, bc)
	if ratio := float64(hi) / float64(lo); ratio > 1.25 {
		t.Errorf("median answers differ %.2f×, want within 25%%: unknown %v, argon2id %v, bcrypt %v", ratio, unknown, argon, bc)
	}
}

// An unknown address, or an account without a password, costs no hash computation: its answer is
// padded by a timer, not by a dummy verification that would spend a pool slot and a core.
func TestALoginForAnUnknownAddressComputesNoHash(t *testing.T) {
	h := &countingHasher{}
	e := newEnv(t, withCountingHasher(h))
	now := e.Clock.Now()
	if err := e.Store.CreateUser(context.Background(), &fluxauth.User{ID: "no-password", Email: "provider-only@example.com",
		UserType: fluxauth.UserTypeClient, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	before := h.n.Load()
	for _, email := range []string{"nobody@example.com", "provider-only@example.com"} {
		wantCode(t, "login "+email, e.do(t, "POST", "/api/auth/login", map[string]string{"email": email, "password": "not the password"}),
			401, "invalid_credentials")
	}
	if n := h.n.Load() - before; n != 0 {
		t.Fatalf("logins for an unknown address and a password-less account computed %d hashes, want 0", n)
	}
}
