package api_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// The attack: with "kate@example.com" signed up, "\u212Aate@example.com" (KELVIN SIGN for K) was a
// second account that shared the first's lockout, so its owner could clear kate's failure count by
// logging into their own account between guesses. Lookalikes are now one address.
func TestLookalikeAddressIsTheSameAccount(t *testing.T) {
	e := newEnv(t)
	kate := e.signup(t, "kate@example.com")
	for _, lookalike := range []string{"\u212Aate@example.com", "KATE@example.com", "ｋａｔｅ@example.com", "kate@EXAMPLE.com"} {
		res := e.do(t, "POST", "/api/auth/signup", map[string]string{"email": lookalike, "password": "attacker's own password", "name": "Mallory"})
		if res.Status != http.StatusConflict || res.errorCode(t) != "email_taken" {
			t.Fatalf("signup of %q beside kate@example.com: %d %s, want 409 email_taken", lookalike, res.Status, res.Body)
		}
		res = e.do(t, "POST", "/api/auth/login", map[string]string{"email": lookalike, "password": "correct horse battery"})
		if res.Status != http.StatusOK {
			t.Fatalf("login as %q: %d %s", lookalike, res.Status, res.Body)
		}
		var ar authResponse
		res.json(t, &ar)
		if ar.User.ID != kate.User.ID || ar.User.Email != "kate@example.com" {
			t.Fatalf("login as %q reached %+v, want kate's account as she spelled it", lookalike, ar.User)
		}
	}
}

// Failures under every spelling of an account's address draw on one budget, kept by the account's
// ID; the rate_limit_exceeded event names the account, not whichever spelling was typed.
func TestLockoutIsKeyedOnTheAccountWhateverSpellingReachesIt(t *testing.T) {
	lockout := config.Default().Rules.Lockout
	e := newEnv(t, withConfig(func(c *config.Config) { c.Rules = ratelimit.Rules{Lockout: lockout} }))
	kate := e.signup(t, "kate@example.com")
	spellings := []string{"kate@example.com", "\u212Aate@example.com", "KATE@EXAMPLE.COM", "ｋａｔｅ@example.com"}
	for i := range lockout.Burst {
		res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": spellings[i%len(spellings)], "password": "wrong password"},
			"X-Forwarded-For", "198.51.100."+strconv.Itoa(i+1))
		if res.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i+1, res.Status, res.Body)
		}
	}
	res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "\u212Aate@example.com", "password": "correct horse battery"})
	if res.Status != http.StatusTooManyRequests {
		t.Fatalf("the right password after %d failures under other spellings: %d %s, want 429", lockout.Burst, res.Status, res.Body)
	}
	ev := e.only(t, fluxauth.EventRateLimitExceeded)
	if ev.Metadata["key"] != ratelimit.Key("lockout:user", kate.User.ID) || ev.UserID != kate.User.ID {
		t.Fatalf("rate_limit_exceeded %+v, want it keyed on the account %s", ev, kate.User.ID)
	}

	// An address no account has is throttled alike, on its canonical form.
	for i := range lockout.Burst {
		spelling := []string{"nobody@example.com", "NOBODY@example.com", "ｎｏｂｏｄｙ@example.com"}[i%3]
		if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": spelling, "password": "wrong password"}); res.Status != http.StatusUnauthorized {
			t.Fatalf("unknown address, failure %d: %d %s", i+1, res.Status, res.Body)
		}
	}
	if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "Nobody@Example.com", "password": "wrong password"}); res.Status != http.StatusTooManyRequests {
		t.Fatalf("unknown address after %d failures: %d %s, want 429", lockout.Burst, res.Status, res.Body)
	}
	evs := e.events(t, fluxauth.EventRateLimitExceeded)
	if len(evs) != 2 || evs[0].Metadata["key"] != ratelimit.Key("lockout:email", "nobody@example.com") {
		t.Fatalf("rate_limit_exceeded events %+v, want the second keyed on the canonical address", evs)
	}
}
