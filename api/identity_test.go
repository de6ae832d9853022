package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// providerToken signs a Google ID token for sub and email; each token is distinct (its own jti),
// as every real sign-in's is. It keeps the fake issuer's hd (example.com), so Google is the authority
// for example.com addresses in it.
func (p *providerEnv) providerToken(t *testing.T, sub, email string, verified bool) string {
	t.Helper()
	return p.googleToken(t, func(c map[string]any) {
		c["sub"], c["email"], c["email_verified"], c["jti"] = sub, email, verified, uuid.NewString()
	})
}

// The attack: a Google account whose email Google has not verified signed in as "victim@example.com"
// and so created an account owning that address; the victim's own signup then got 409.
func TestUnverifiedProviderEmailCreatesNothing(t *testing.T) {
	p := newProviderEnv(t)
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "squatter", "victim@example.com", false)})
	if res.Status != http.StatusForbidden || res.errorCode(t) != "email_not_verified" {
		t.Fatalf("sign-in with an unverified email for a new address: %d %s, want 403 email_not_verified", res.Status, res.Body)
	}
	if _, err := p.Store.UserByEmail(t.Context(), "victim@example.com"); !errors.Is(err, fluxauth.ErrNotFound) {
		t.Fatalf("an account was created: %v", err)
	}
	if _, err := p.Store.IdentityBySubject(t.Context(), "google", "squatter"); !errors.Is(err, fluxauth.ErrNotFound) {
		t.Fatalf("an identity was created: %v", err)
	}
	if ev := p.only(t, fluxauth.EventFailedLogin); ev.Metadata["reason"] != "email_not_verified" || ev.Metadata["provider"] != "google" {
		t.Fatalf("failed_login %+v", ev)
	}
	p.signup(t, "victim@example.com") // the owner's signup succeeds
}

// The attack (pre-hijacking): an attacker signs up "victim@example.com" with their own password;
// nothing proves they own the address. Later the real owner signs in with Google, which vouches for
// it. That sign-in now takes the account over: the attacker's password, and a provider identity
// linked without a verified email, are removed, their sessions end at once, and the audit log says
// why.
func TestVerifiedSignInTakesOverAnAccountWhoseEmailWasNeverProven(t *testing.T) {
	// The revocation cache outlives the test: only the claim's announcement can make the attacker's
	// access tokens answer session_revoked, as it does within a second on every instance.
	p := newProviderEnv(t, withConfig(func(c *config.Config) { c.RevocationCacheTTL = time.Hour }))
	ctx := t.Context()
	attacker := p.signup(t, "victim@example.com", "password", "attacker's own password")
	second := p.do(t, "POST", "/api/auth/login", map[string]string{"email": "victim@example.com", "password": "attacker's own password", "deviceName": "Attacker's other laptop"})
	if second.Status != http.StatusOK {
		t.Fatalf("attacker's second login: %d %s", second.Status, second.Body)
	}
	var attacker2 authResponse
	second.json(t, &attacker2)
	// An Apple identity linked (by older code) without a verified email: a credential too.
	if err := p.Store.CreateIdentity(ctx, &fluxauth.Identity{Provider: "apple", Subject: "squatter", UserID: attacker.User.ID,
		Email: "victim@example.com", CreatedAt: p.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{attacker.AccessToken, attacker2.AccessToken} {
		if res := p.do(t, "GET", "/api/auth/me", nil, bearer(tok)...); res.Status != http.StatusOK {
			t.Fatalf("attacker's session before the takeover: %d %s", res.Status, res.Body)
		}
	}
	if *attacker.User.EmailVerified {
		t.Fatal("a password signup reports its email verified")
	}

	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "victim-google", "Victim@Example.com", true)})
	if res.Status != http.StatusOK {
		t.Fatalf("the owner's Google sign-in: %d %s", res.Status, res.Body)
	}
	var owner authResponse
	res.json(t, &owner)
	if owner.User.ID != attacker.User.ID || !*owner.User.EmailVerified {
		t.Fatalf("the owner's sign-in answered user %+v, want the account, its email verified", owner.User)
	}

	// Every credential the attacker held is gone...
	if res := p.do(t, "POST", "/api/auth/login", map[string]string{"email": "victim@example.com", "password": "attacker's own password"}); res.Status != http.StatusUnauthorized {
		t.Fatalf("the attacker's password after the takeover: %d %s", res.Status, res.Body)
	}
	if _, err := p.Store.IdentityBySubject(ctx, "apple", "squatter"); !errors.Is(err, fluxauth.ErrNotFound) {
		t.Fatalf("the unverified identity survived the takeover: %v", err)
	}
	u, err := p.Store.UserByID(ctx, owner.User.ID)
	if err != nil || u.PasswordHash != "" || !u.EmailVerifiedAt.Equal(p.Clock.Now()) {
		t.Fatalf("account after the takeover %+v, %v: want no password, the email verified now", u, err)
	}
	// ...and so are the attacker's sessions: access tokens at once, refresh tokens too.
	for _, a := range []*authResponse{attacker, &attacker2} {
		if res := p.do(t, "GET", "/api/auth/me", nil, bearer(a.AccessToken)...); res.Status != http.StatusUnauthorized || res.errorCode(t) != "session_revoked" {
			t.Fatalf("the attacker's access token after the takeover: %d %s, want 401 session_revoked", res.Status, res.Body)
		}
		if res := p.refresh(t, a.RefreshToken); res.Status != http.StatusUnauthorized || res.errorCode(t) != "refresh_token_revoked" {
			t.Fatalf("the attacker's refresh token after the takeover: %d %s", res.Status, res.Body)
		}
	}
	// The owner sees only their own session, not the attacker's, and a refresh reports the address
	// proven too.
	if s := p.sessions(t, owner.AccessToken); len(s) != 1 || !s[0].Current {
		t.Fatalf("the owner's sessions %+v, want only the current one", s)
	}
	if ar := p.mustRefresh(t, owner.RefreshToken); !*ar.User.EmailVerified {
		t.Fatalf("refresh answered user %+v, want the email verified", ar.User)
	}

	revoked := p.events(t, fluxauth.EventTokenRevoked)
	if len(revoked) != 2 {
		t.Fatalf("%d token_revoked events, want one per attacker session", len(revoked))
	}
	for _, ev := range revoked {
		if ev.Metadata["reason"] != "account_claimed" || ev.Metadata["by"] != "provider:google" || ev.UserID != owner.User.ID {
			t.Fatalf("token_revoked %+v", ev)
		}
	}
	claimed := p.only(t, fluxauth.EventAccountClaimed)
	if claimed.Severity != fluxauth.SeverityWarning || claimed.UserID != owner.User.ID || claimed.Metadata["provider"] != "google" ||
		claimed.Metadata["passwordRemoved"] != true || claimed.Metadata["identitiesRemoved"] != float64(1) || claimed.Metadata["sessionsRevoked"] != float64(2) {
		t.Fatalf("account_claimed %+v", claimed)
	}

	// The address is proven now: the owner's next sign-in is an ordinary one.
	if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "victim-google", "victim@example.com", true)}); res.Status != http.StatusOK {
		t.Fatalf("the owner's second sign-in: %d %s", res.Status, res.Body)
	}
	if res := p.do(t, "GET", "/api/auth/me", nil, bearer(owner.AccessToken)...); res.Status != http.StatusOK {
		t.Fatalf("the owner's first session after their second sign-in: %d %s", res.Status, res.Body)
	}
	if n := len(p.events(t, fluxauth.EventAccountClaimed)); n != 1 {
		t.Fatalf("%d account_claimed events, want the first sign-in's only", n)
	}
}

// An account whose address is proven keeps its password and sessions when another verified
// provider identity is linked to it.
func TestVerifiedSignInLinksToAnAccountWhoseEmailIsProven(t *testing.T) {
	p := newProviderEnv(t)
	ctx := t.Context()
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "jane-google", "jane@example.com", true)})
	if res.Status != http.StatusCreated {
		t.Fatalf("Google sign-up: %d %s", res.Status, res.Body)
	}
	var first authResponse
	res.json(t, &first)
	if !*first.User.EmailVerified {
		t.Fatal("an account made by a verified provider sign-in reports its email unverified")
	}
	// The owner later set a password (what a password-setting endpoint will do).
	hash, err := p.Accounts.Passwords.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Store.SetPasswordHash(ctx, first.User.ID, hash, p.Clock.Now()); err != nil {
		t.Fatal(err)
	}

	// A second Google account of the example.com Workspace (the default token's hd) for the same
	// address: Google is the address's authority, so it links.
	res = p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "jane-google-2", "JANE@example.com", true)})
	if res.Status != http.StatusOK {
		t.Fatalf("Workspace sign-in into the proven account: %d %s", res.Status, res.Body)
	}
	var linked authResponse
	res.json(t, &linked)
	if linked.User.ID != first.User.ID {
		t.Fatal("linked to another account")
	}
	if res := p.do(t, "POST", "/api/auth/login", map[string]string{"email": "jane@example.com", "password": "correct horse battery"}); res.Status != http.StatusOK {
		t.Fatalf("the password after linking: %d %s", res.Status, res.Body)
	}
	if res := p.do(t, "GET", "/api/auth/me", nil, bearer(first.AccessToken)...); res.Status != http.StatusOK {
		t.Fatalf("the first session after linking: %d %s", res.Status, res.Body)
	}
	if evs := p.events(t, fluxauth.EventAccountClaimed); len(evs) != 0 {
		t.Fatalf("account_claimed %+v for a proven account", evs)
	}
}

// A provider-only account made before verification was recorded (its email unproven, its one
// identity the only way in) is proven by its owner's next verified sign-in without ending the
// owner's other sessions: nobody else could hold a credential of it.
func TestVerifiedSignInProvesALegacyProviderAccountWithoutEndingItsSessions(t *testing.T) {
	p := newProviderEnv(t)
	ctx := t.Context()
	now := p.Clock.Now()
	u := &fluxauth.User{ID: uuid.NewString(), Email: "legacy@example.com", Name: "Legacy", UserType: fluxauth.UserTypeClient, CreatedAt: now, UpdatedAt: now}
	if err := p.Store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := p.Store.CreateIdentity(ctx, &fluxauth.Identity{Provider: "google", Subject: "legacy", UserID: u.ID, Email: u.Email, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "legacy", "legacy@example.com", false)})
	if res.Status != http.StatusOK {
		t.Fatalf("sign-in through the linked identity without a verified email: %d %s", res.Status, res.Body)
	}
	var before authResponse
	res.json(t, &before)
	if *before.User.EmailVerified {
		t.Fatal("an unverified sign-in proved the email")
	}
	res = p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "legacy", "legacy@example.com", true)})
	var after authResponse
	res.json(t, &after)
	if res.Status != http.StatusOK || !*after.User.EmailVerified {
		t.Fatalf("verified sign-in: %d %s, want the email proven", res.Status, res.Body)
	}
	if res := p.do(t, "GET", "/api/auth/me", nil, bearer(before.AccessToken)...); res.Status != http.StatusOK {
		t.Fatalf("the owner's earlier session: %d %s", res.Status, res.Body)
	}
	if evs := p.events(t, fluxauth.EventAccountClaimed); len(evs) != 0 {
		t.Fatalf("account_claimed %+v with nothing taken from anyone", evs)
	}
}

// A provider vouches only for the address in its token: a sign-in through a linked identity whose
// (verified) provider address is not the account's proves nothing about the account's address.
func TestVerifiedSignInForAnotherAddressClaimsNothing(t *testing.T) {
	p := newProviderEnv(t)
	acc := p.signup(t, "jane@example.com")
	if err := p.Store.CreateIdentity(t.Context(), &fluxauth.Identity{Provider: "google", Subject: "jane-google", UserID: acc.User.ID,
		Email: "jane.other@gmail.com", EmailVerified: true, CreatedAt: p.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "jane-google", "jane.other@gmail.com", true)})
	var ar authResponse
	res.json(t, &ar)
	if res.Status != http.StatusOK || ar.User.ID != acc.User.ID || *ar.User.EmailVerified {
		t.Fatalf("sign-in through the linked identity: %d %s, want the account, its address still unproven", res.Status, res.Body)
	}
	if res := p.do(t, "POST", "/api/auth/login", map[string]string{"email": "jane@example.com", "password": "correct horse battery"}); res.Status != http.StatusOK {
		t.Fatalf("the password after the sign-in: %d %s", res.Status, res.Body)
	}
	if evs := p.events(t, fluxauth.EventAccountClaimed); len(evs) != 0 {
		t.Fatalf("account_claimed %+v", evs)
	}
}

// A password login that was being checked while the owner's sign-in took the account over does not
// get a session: its transaction waits for the claim's and finds the password gone.
func TestPasswordLoginRacingATakeoverGetsNoSession(t *testing.T) {
	gate := newGate()
	clock := testenv.NewClock(time.Now())
	p := newProviderEnv(t, withClock(clock), withDeps(func(d *app.Deps) { d.Limiter = gatedLimiter{ratelimit.NewMemory(clock), gate} }))
	p.signup(t, "victim@example.com", "password", "attacker's own password")

	gate.arm()
	done := make(chan *response, 1)
	go func() {
		res, err := p.send("POST", "/api/auth/login", map[string]string{"email": "victim@example.com", "password": "attacker's own password"})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-gate.reached // the login has read the account, with its password hash, and waits in the lockout
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "victim-google", "victim@example.com", true)})
	if res.Status != http.StatusOK {
		t.Fatalf("the owner's sign-in: %d %s", res.Status, res.Body)
	}
	var owner authResponse
	res.json(t, &owner)
	close(gate.release)
	login := <-done
	if login == nil {
		t.FailNow()
	}
	if login.Status != http.StatusUnauthorized || login.errorCode(t) != "invalid_credentials" {
		t.Fatalf("the racing password login: %d %s, want 401 invalid_credentials", login.Status, login.Body)
	}
	if s := p.sessions(t, owner.AccessToken); len(s) != 1 {
		t.Fatalf("sessions after the race %+v, want only the owner's", s)
	}
	u, err := p.Store.UserByID(t.Context(), owner.User.ID)
	if err != nil || u.PasswordHash != "" {
		t.Fatalf("account after the race %+v, %v: the removed password is back", u, err)
	}
}

// gate holds the first goroutine to pass it after arm until release is closed, closing reached when
// it gets there.
type gate struct {
	armed            atomic.Bool
	reached, release chan struct{}
}

func newGate() *gate { return &gate{reached: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) arm() { g.armed.Store(true) }

func (g *gate) pass() {
	if g.armed.CompareAndSwap(true, false) {
		close(g.reached)
		<-g.release
	}
}

// gatedLimiter is the real limiter with a gate before the lockout's attempts.
type gatedLimiter struct {
	ratelimit.Limiter
	*gate
}

func (g gatedLimiter) Allow(ctx context.Context, key string, l ratelimit.Limit) (ratelimit.Result, error) {
	if strings.HasPrefix(key, "lockout:") {
		g.pass()
	}
	return g.Limiter.Allow(ctx, key, l)
}

// gatedStore is the real store with a gate after IdentityBySubject has answered.
type gatedStore struct {
	fluxauth.Backend
	*gate
}

func (g gatedStore) IdentityBySubject(ctx context.Context, provider, subject string) (*fluxauth.Identity, error) {
	id, err := g.Backend.IdentityBySubject(ctx, provider, subject)
	g.pass()
	return id, err
}

// A sign-in through an identity that a takeover removed while the sign-in was under way gets no
// session: its transaction waits for the claim's, finds the identity gone and starts over, and
// the address is not its signer's.
func TestIdentitySignInRacingATakeoverGetsNoSession(t *testing.T) {
	gate := newGate()
	p := newProviderEnv(t, withStore(gatedStore{sqlitetest.MustOpenDB(t), gate}))
	ctx := t.Context()
	attacker := p.signup(t, "victim@example.com", "password", "attacker's own password")
	if err := p.Store.CreateIdentity(ctx, &fluxauth.Identity{Provider: "apple", Subject: "squatter", UserID: attacker.User.ID,
		Email: "victim@example.com", CreatedAt: p.Clock.Now()}); err != nil {
		t.Fatal(err)
	}

	gate.arm()
	done := make(chan *response, 1)
	go func() {
		res, err := p.send("POST", "/api/auth/apple", map[string]string{"idToken": p.appleToken(t, "squatter", "victim@example.com", false)})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-gate.reached // the attacker's sign-in has found its identity
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "victim-google", "victim@example.com", true)})
	if res.Status != http.StatusOK {
		t.Fatalf("the owner's sign-in: %d %s", res.Status, res.Body)
	}
	var owner authResponse
	res.json(t, &owner)
	close(gate.release)
	signIn := <-done
	if signIn == nil {
		t.FailNow()
	}
	if signIn.Status != http.StatusConflict || signIn.errorCode(t) != "account_exists" {
		t.Fatalf("the racing sign-in through the removed identity: %d %s, want 409 account_exists", signIn.Status, signIn.Body)
	}
	if s := p.sessions(t, owner.AccessToken); len(s) != 1 {
		t.Fatalf("sessions after the race %+v, want only the owner's", s)
	}
}

func (p *providerEnv) appleToken(t *testing.T, sub, email string, verified bool) string {
	t.Helper()
	c := p.apple.Claims()
	c["sub"], c["email"], c["email_verified"], c["jti"] = sub, email, verified, uuid.NewString()
	return p.apple.Sign(t, c)
}
