package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/mail/mailtest"
)

func (e *env) verify(tb testing.TB, body map[string]string, headers ...string) *response {
	tb.Helper()
	return e.do(tb, "POST", "/api/auth/email/verify", body, headers...)
}

// wantUnverified fails unless the account behind tok still has an unproven address.
func (e *env) wantUnverified(tb testing.TB, tok string) {
	tb.Helper()
	if res := e.do(tb, "GET", "/api/auth/me", nil, bearer(tok)...); !strings.Contains(string(res.Body), `"emailVerified":false`) {
		tb.Fatalf("me: %s, want an unverified address", res.Body)
	}
}

// The pre-hijack: the attacker signs the victim's address up with a password; the victim clicks
// the verification link they never asked for. Without signing in, the click proves nothing: the
// address stays unproven, so the victim's Google sign-in later claims the account from the
// attacker (password and sessions gone) instead of being linked into it.
func TestAVerificationLinkWithoutSignInCannotProveAPreHijackedAddress(t *testing.T) {
	smtp := mailtest.NewServer(t)
	p := newProviderEnv(t, withMail(t, smtp, false)...)
	attacker := p.signup(t, "victim@gmail.com")
	link := mailtest.LinkToken(t, smtp.Wait(t, 1, 10*time.Second)[0], verifyPage)
	wantCode(t, "the victim's click", p.verify(t, map[string]string{"token": link}), 401, fluxauth.EInvalidToken)
	wantCode(t, "the click with an email and no password", p.verify(t, map[string]string{"token": link, "email": "victim@gmail.com"}), 401, fluxauth.EInvalidToken)
	p.wantUnverified(t, attacker.AccessToken)
	if n := len(p.events(t, fluxauth.EventEmailVerified)); n != 0 {
		t.Fatalf("%d email_verified events after an unauthenticated click", n)
	}
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "victim-google", "victim@gmail.com", true)})
	wantStatus(t, "the victim's Google sign-in", res, http.StatusOK)
	wantCode(t, "the attacker's password after the victim's sign-in",
		p.do(t, "POST", "/api/auth/login", map[string]string{"email": "victim@gmail.com", "password": ownerPassword}), 401, fluxauth.EInvalidCredentials)
	if res := p.do(t, "POST", "/api/auth/refresh", map[string]string{"refreshToken": attacker.RefreshToken}); res.Status != http.StatusUnauthorized {
		t.Fatalf("the attacker's refresh token after the victim's sign-in: %d %s", res.Status, res.Body)
	}
}

func TestTheAccountsBearerVerifiesAndAnotherAccountsDoesNot(t *testing.T) {
	m := newMailEnv(t, nil)
	owner := m.signup(t, "owner@example.com")
	link := m.mailTo(t, 1, "owner@example.com", verifyPage)
	other := m.signup(t, "other@example.com")
	wantCode(t, "another account's Bearer", m.verify(t, map[string]string{"token": link}, bearer(other.AccessToken)...), 400, fluxauth.EInvalidVerificationToken)
	wantCode(t, "another account's email and password", m.verify(t, map[string]string{"token": link, "email": "other@example.com", "password": ownerPassword}), 400, fluxauth.EInvalidVerificationToken)
	m.wantUnverified(t, owner.AccessToken)
	m.wantUnverified(t, other.AccessToken)
	wantCode(t, "a bad Bearer", m.verify(t, map[string]string{"token": link}, bearer("not-a-token")...), 401, fluxauth.EInvalidToken)
	res := m.verify(t, map[string]string{"token": link}, bearer(owner.AccessToken)...)
	wantStatus(t, "the owner's Bearer, after the others (the token was not spent)", res, 200)
	if !strings.Contains(string(res.Body), `"emailVerified":true`) {
		t.Fatalf("verify answered %s", res.Body)
	}
}

func TestTheAccountsEmailAndPasswordVerify(t *testing.T) {
	for _, required := range []bool{false, true} {
		t.Run(fmt.Sprintf("required=%t", required), func(t *testing.T) {
			m := newMailEnv(t, nil, withConfig(func(c *config.Config) { c.Account.RequireVerifiedEmail = required }))
			ar := m.signup(t, "by-password@example.com")
			link := m.mailTo(t, 1, "by-password@example.com", verifyPage)
			wantCode(t, "a wrong password", m.verify(t, map[string]string{"token": link, "email": "by-password@example.com", "password": "not the password"}), 401, fluxauth.EInvalidCredentials)
			m.wantUnverified(t, ar.AccessToken)
			wantStatus(t, "the right password", m.verify(t, map[string]string{"token": link, "email": "BY-password@example.com", "password": ownerPassword}), 200)
			wantLogin(t, "a login once verified", m.loginWith(t, "by-password@example.com", ownerPassword, "", "198.51.100.1"))
		})
	}
}

func TestWrongPasswordsAtVerifyCountOnTheLoginLockout(t *testing.T) {
	m := newMailEnv(t, nil)
	ar := m.signup(t, "guessed@example.com")
	link := m.mailTo(t, 1, "guessed@example.com", verifyPage)
	burst := m.Accounts.Rules.Lockout.Burst
	for i := range burst {
		ip := fmt.Sprintf("198.51.100.%d", i+1) // the lockout is the account's, from any IP
		wantCode(t, "a wrong password", m.verify(t, map[string]string{"token": link, "email": "guessed@example.com", "password": "wrong guess"},
			"X-Forwarded-For", ip), 401, fluxauth.EInvalidCredentials)
	}
	res := m.verify(t, map[string]string{"token": link, "email": "guessed@example.com", "password": ownerPassword}, "X-Forwarded-For", "198.51.100.200")
	wantCode(t, "the right password once locked", res, http.StatusTooManyRequests, fluxauth.ERateLimited)
	wantCode(t, "a login once locked", m.loginWith(t, "guessed@example.com", ownerPassword, "", "198.51.100.201"), http.StatusTooManyRequests, fluxauth.ERateLimited)
	m.wantUnverified(t, ar.AccessToken)
}
