package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/oidc"
	"github.com/fluxstudio/fluxauth/oidc/oidctest"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// providerEnv is a fluxauth server whose Google and Apple are local OIDC issuers on loopback.
type providerEnv struct {
	*env
	google, apple *oidctest.Issuer
}

func newProviderEnv(t *testing.T, opts ...envOption) *providerEnv {
	t.Helper()
	g, a := oidctest.NewIssuer(t), oidctest.NewIssuer(t)
	pe := &providerEnv{google: g, apple: a}
	pe.env = newEnv(t, append(opts, withProviders(g, a))...)
	g.Now, a.Now = pe.Clock.Now, pe.Clock.Now
	return pe
}

// withProviders makes google and apple the server's Google and Apple.
func withProviders(google, apple *oidctest.Issuer) envOption {
	return withConfig(func(c *config.Config) {
		c.GoogleIssuer, c.GoogleClientIDs = google.URL(), []string{"web-client", oidctest.ClientID}
		c.AppleIssuer, c.AppleClientIDs = apple.URL(), []string{oidctest.ClientID}
	})
}

func (p *providerEnv) googleToken(t *testing.T, mutate func(map[string]any)) string {
	c := p.google.Claims()
	if mutate != nil {
		mutate(c)
	}
	return p.google.Sign(t, c)
}

func TestGoogleSignInCreatesThenSignsIn(t *testing.T) {
	p := newProviderEnv(t)
	tok := p.googleToken(t, func(c map[string]any) { c["email"] = "g@example.com"; c["name"] = "Gee Oogle" })
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok, "deviceName": "Pixel"})
	if res.Status != http.StatusCreated {
		t.Fatalf("first sign-in %d %s", res.Status, res.Body)
	}
	var first authResponse
	res.json(t, &first)
	if first.User.Email != "g@example.com" || first.User.Name != "Gee Oogle" || first.Token != first.AccessToken || first.RefreshToken == "" {
		t.Fatalf("response %+v", first)
	}
	res = p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleToken(t, nil)})
	if res.Status != http.StatusOK {
		t.Fatalf("second sign-in %d %s", res.Status, res.Body)
	}
	var second authResponse
	res.json(t, &second)
	if second.User.ID != first.User.ID {
		t.Fatal("the same subject got a second account")
	}
	// Sessions, refresh and events work exactly as for password login.
	if len(p.sessions(t, second.AccessToken)) != 2 {
		t.Fatal("sessions missing")
	}
	p.mustRefresh(t, second.RefreshToken)
	if ev := p.only(t, fluxauth.EventSignup); ev.Metadata["method"] != "google" {
		t.Fatalf("signup event %+v", ev)
	}
	if ev := p.only(t, fluxauth.EventLoginSuccess); ev.Metadata["method"] != "google" {
		t.Fatalf("login event %+v", ev)
	}
}

func TestIDTokenRejections(t *testing.T) {
	p := newProviderEnv(t)
	cases := map[string]func(map[string]any){
		"expired":   func(c map[string]any) { c["exp"] = p.Clock.Now().Add(-time.Minute).Unix() },
		"wrong aud": func(c map[string]any) { c["aud"] = "someone-else" },
		"wrong iss": func(c map[string]any) { c["iss"] = "https://evil.example" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleToken(t, mutate)})
			if res.Status != 401 || res.errorCode(t) != "invalid_id_token" {
				t.Fatalf("got %d %s", res.Status, res.Body)
			}
		})
	}
	t.Run("bad signature", func(t *testing.T) {
		res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.google.SignWithForeignKey(t, p.google.Claims())})
		if res.Status != 401 || res.errorCode(t) != "invalid_id_token" {
			t.Fatalf("got %d %s", res.Status, res.Body)
		}
	})
	evs := p.events(t, fluxauth.EventFailedLogin)
	if len(evs) != 4 {
		t.Fatalf("%d failed_login events, want 4", len(evs))
	}
	for _, ev := range evs {
		if ev.Metadata["reason"] != "invalid_id_token" || ev.Metadata["provider"] != "google" || ev.Metadata["detail"] == "" {
			t.Fatalf("event %+v", ev)
		}
	}
}

func TestAppleNonceAndName(t *testing.T) {
	p := newProviderEnv(t)
	sum := sha256.Sum256([]byte("raw-nonce"))
	c := p.apple.Claims()
	c["nonce"] = hex.EncodeToString(sum[:])
	c["email"] = "relay123@privaterelay.appleid.com"
	tok := p.apple.Sign(t, c)
	if res := p.do(t, "POST", "/api/auth/apple", map[string]string{"idToken": tok, "nonce": "other-nonce"}); res.Status != 401 {
		t.Fatalf("nonce mismatch: %d %s", res.Status, res.Body)
	}
	res := p.do(t, "POST", "/api/auth/apple", map[string]string{"idToken": tok, "nonce": "raw-nonce", "name": "Ann Apple"})
	if res.Status != 201 {
		t.Fatalf("apple: %d %s", res.Status, res.Body)
	}
	var ar authResponse
	res.json(t, &ar)
	if ar.User.Name != "Ann Apple" || ar.User.Email != "relay123@privaterelay.appleid.com" {
		t.Fatalf("user %+v", ar.User)
	}
}

func TestTokenWithANonceClaimIsRefusedWithoutTheNonce(t *testing.T) {
	// Someone who captured a token from a sign-in that used a nonce does not know the nonce.
	p := newProviderEnv(t)
	sum := sha256.Sum256([]byte("raw-nonce"))
	apple := p.apple.Claims()
	apple["nonce"] = hex.EncodeToString(sum[:])
	// Apple vouches only for its own domains: another address than Google's, whichever signs in first.
	apple["sub"], apple["email"] = "nonce-subject", "nonce-subject@privaterelay.appleid.com"
	google := p.google.Claims()
	google["nonce"] = "raw-nonce"
	for path, tok := range map[string]string{"/api/auth/apple": p.apple.Sign(t, apple), "/api/auth/google": p.google.Sign(t, google)} {
		if res := p.do(t, "POST", path, map[string]string{"idToken": tok}); res.Status != 401 || res.errorCode(t) != "invalid_id_token" {
			t.Fatalf("%s without the nonce: %d %s", path, res.Status, res.Body)
		}
		if res := p.do(t, "POST", path, map[string]string{"idToken": tok, "nonce": "raw-nonce"}); res.Status >= 300 {
			t.Fatalf("%s with the nonce: %d %s", path, res.Status, res.Body)
		}
	}
	evs := p.events(t, fluxauth.EventFailedLogin)
	if len(evs) != 2 || evs[0].Metadata["detail"] != oidc.ReasonNonce || evs[1].Metadata["detail"] != oidc.ReasonNonce {
		t.Fatalf("failed_login events %+v, want two with detail nonce", evs)
	}
}

func TestIdentityLinksToExistingAccountOnlyWithVerifiedEmail(t *testing.T) {
	p := newProviderEnv(t)
	owner := p.signup(t, "owner@example.com")
	unverified := p.googleToken(t, func(c map[string]any) {
		c["email"] = "OWNER@example.com"
		c["email_verified"] = false
		c["sub"] = "attacker"
	})
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": unverified})
	if res.Status != 409 || res.errorCode(t) != "account_exists" {
		t.Fatalf("unverified link: %d %s", res.Status, res.Body)
	}
	if _, err := p.Store.IdentityBySubject(t.Context(), "google", "attacker"); err == nil {
		t.Fatal("an unverified email was linked")
	}
	verified := p.googleToken(t, func(c map[string]any) {
		c["email"] = "owner@example.com"
		c["email_verified"] = true
		c["sub"] = "owner-sub"
	})
	res = p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": verified})
	if res.Status != 200 {
		t.Fatalf("verified link: %d %s", res.Status, res.Body)
	}
	var ar authResponse
	res.json(t, &ar)
	if ar.User.ID != owner.User.ID {
		t.Fatal("linked to the wrong account")
	}
	// The address had never been proven, so whoever set the password may not be its owner: the
	// verified sign-in took the account over and the password no longer works (see
	// TestVerifiedSignInTakesOverAnAccountWhoseEmailWasNeverProven).
	if r := p.do(t, "POST", "/api/auth/login", map[string]string{"email": "owner@example.com", "password": "correct horse battery"}); r.Status != 401 {
		t.Fatalf("password login after the takeover: %d, want 401", r.Status)
	}
}

func TestProviderDownIs503AndDisabledIs404(t *testing.T) {
	p := newProviderEnv(t)
	tok := p.googleToken(t, nil)
	p.google.Stop(t)
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok})
	if res.Status != 503 || res.errorCode(t) != "provider_unavailable" {
		t.Fatalf("provider down: %d %s", res.Status, res.Body)
	}
	p.google.Start(t)
	if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok}); res.Status != 201 {
		t.Fatalf("after recovery: %d %s", res.Status, res.Body)
	}

	e := newEnv(t) // no client ids configured
	res = e.do(t, "POST", "/api/auth/apple", map[string]string{"idToken": "x"})
	if res.Status != 404 || res.errorCode(t) != "provider_disabled" {
		t.Fatalf("disabled: %d %s", res.Status, res.Body)
	}
}

func TestKeyRotationAtTheIssuer(t *testing.T) {
	p := newProviderEnv(t)
	if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleToken(t, nil)}); res.Status != 201 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	p.google.RotateKey(t)
	if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleToken(t, nil)}); res.Status != 200 {
		t.Fatalf("after rotation: %d %s", res.Status, res.Body)
	}
}

func TestIDTokenSignInIsRateLimitedPerIP(t *testing.T) {
	p := newProviderEnv(t, withConfig(func(c *config.Config) {
		c.Rules.IDTokenIP = ratelimit.Limit{Rate: 2, Period: time.Minute}
	}))
	for i := 0; i < 2; i++ {
		if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleToken(t, nil)}); res.Status >= 300 {
			t.Fatalf("sign-in %d: %d %s", i, res.Status, res.Body)
		}
	}
	res := p.do(t, "POST", "/api/auth/apple", map[string]string{"idToken": p.googleToken(t, nil)})
	if res.Status != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("third sign-in from one IP: %d %s", res.Status, res.Body)
	}
}

func TestIDTokenSignsInOnce(t *testing.T) {
	for name, mutate := range map[string]func(map[string]any){
		"with jti":    nil,
		"without jti": func(c map[string]any) { delete(c, "jti") }, // as Apple's: known by its hash
	} {
		t.Run(name, func(t *testing.T) {
			p := newProviderEnv(t)
			tok := p.googleToken(t, mutate)
			first := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok})
			if first.Status != http.StatusCreated {
				t.Fatalf("first sign-in: %d %s", first.Status, first.Body)
			}
			var ar authResponse
			first.json(t, &ar)
			// A captured token replayed later, from elsewhere, before it expires.
			p.Clock.Advance(10 * time.Minute)
			res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok}, "X-Forwarded-For", "203.0.113.9")
			if res.Status != http.StatusUnauthorized || res.errorCode(t) != "invalid_id_token" {
				t.Fatalf("replay: %d %s", res.Status, res.Body)
			}
			wantReplayEvents(t, p.env, 1)
			if n := len(p.sessions(t, ar.AccessToken)); n != 1 {
				t.Fatalf("%d sessions after a replay, want 1", n)
			}
			// The owner signs in again with a fresh token of the same subject.
			if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleToken(t, mutate)}); res.Status != http.StatusOK {
				t.Fatalf("fresh token: %d %s", res.Status, res.Body)
			}
		})
	}
}

func TestAnIDTokenIsSpentPerProvider(t *testing.T) {
	// Keys are per provider: Apple's use of a jti says nothing of a Google token with the same jti.
	p := newProviderEnv(t)
	gc, ac := p.google.Claims(), p.apple.Claims()
	ac["jti"] = gc["jti"]
	ac["sub"], ac["email"] = "apple-subject", "apple-subject@icloud.com"
	for path, tok := range map[string]string{"/api/auth/google": p.google.Sign(t, gc), "/api/auth/apple": p.apple.Sign(t, ac)} {
		if res := p.do(t, "POST", path, map[string]string{"idToken": tok}); res.Status >= 300 {
			t.Fatalf("%s: %d %s", path, res.Status, res.Body)
		}
	}
}

func TestAnIDTokenWhoseSignInFailedIsNotSpent(t *testing.T) {
	// The use is recorded in the sign-in's transaction: when that rolls back, the client may retry
	// the same token, and the first sign-in that commits spends it.
	db := &failingStore{DB: sqlitetest.MustOpenDB(t)}
	p := newProviderEnv(t, withStore(db))
	tok := p.googleToken(t, nil)
	db.failNext.Store(true)
	if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok}); res.Status < 500 {
		t.Fatalf("sign-in whose transaction failed: %d %s", res.Status, res.Body)
	}
	if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok}); res.Status != http.StatusCreated {
		t.Fatalf("retry of the same token: %d %s", res.Status, res.Body)
	}
	if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok}); res.Status != http.StatusUnauthorized {
		t.Fatalf("replay after the retry: %d %s", res.Status, res.Body)
	}
	wantReplayEvents(t, p.env, 1)
}

// failingStore is a real SQLite store whose next transaction, once failNext is set, runs and is
// then rolled back with an error, as when the database fails at commit.
type failingStore struct {
	*sqlite.DB
	failNext atomic.Bool
}

func (s *failingStore) Update(ctx context.Context, fn func(tx fluxauth.Tx) error) error {
	if !s.failNext.CompareAndSwap(true, false) {
		return s.DB.Update(ctx, fn)
	}
	errInjected := errors.New("injected failure")
	err := s.DB.Update(ctx, func(tx fluxauth.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errInjected
	})
	return fmt.Errorf("%w: %w", fluxauth.ErrUnavailable, err)
}

func TestParallelSignInsWithOneIDTokenOpenOneSessionOnSQLite(t *testing.T) {
	p := newProviderEnv(t)
	parallelIDTokenSignIns(t, []*env{p.env}, p.google, 20)
}

func TestParallelSignInsWithOneIDTokenAcrossTwoInstancesOpenOneSession(t *testing.T) {
	g, a := oidctest.NewIssuer(t), oidctest.NewIssuer(t)
	e1, e2 := twoInstances(t, withProviders(g, a))
	g.Now, a.Now = e1.Clock.Now, e1.Clock.Now
	parallelIDTokenSignIns(t, []*env{e1, e2}, g, 20)
}

// parallelIDTokenSignIns signs a Google user up, then presents one fresh ID token of theirs n
// times at once, spread over envs and client addresses: exactly one sign-in succeeds, every other
// is a replay. The account exists first so that nothing but the token's use is contended (a first
// sign-in would also race on creating the user, whose unique email serialises the racers).
func parallelIDTokenSignIns(t *testing.T, envs []*env, google *oidctest.Issuer, n int) {
	t.Helper()
	if res := envs[0].do(t, "POST", "/api/auth/google", map[string]string{"idToken": google.Sign(t, google.Claims())}); res.Status != http.StatusCreated {
		t.Fatalf("first sign-in: %d %s", res.Status, res.Body)
	}
	tok := google.Sign(t, google.Claims())
	var wg sync.WaitGroup
	results := make([]*response, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := envs[i%len(envs)].send("POST", "/api/auth/google", map[string]string{"idToken": tok},
				"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
			if err != nil {
				t.Errorf("request %d: %v", i, err) // not Fatal: this runs off the test goroutine
				return
			}
			results[i] = res
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var winner *authResponse
	for i, res := range results {
		switch {
		case res.Status == http.StatusOK && winner == nil:
			winner = &authResponse{}
			res.json(t, winner)
		case res.Status == http.StatusUnauthorized && res.errorCode(t) == "invalid_id_token":
		default:
			t.Fatalf("request %d: %d %s", i, res.Status, res.Body)
		}
	}
	if winner == nil {
		t.Fatal("no sign-in succeeded")
	}
	if got := len(envs[0].sessions(t, winner.AccessToken)); got != 2 {
		t.Fatalf("%d sessions, want 2 (the sign-up's and the winner's)", got)
	}
	replays := 0
	for _, e := range envs {
		if err := e.Recorder.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, ev := range envs[0].events(t, fluxauth.EventFailedLogin) {
		if ev.Metadata["reason"] == account.ReasonReplayed && ev.Metadata["detail"] == account.ReasonReplayed {
			replays++
		}
	}
	if replays != n-1 {
		t.Fatalf("%d failed_login events with detail replayed, want %d", replays, n-1)
	}
}

// wantReplayEvents checks that the audit log holds n failed_login events of replayed ID tokens.
func wantReplayEvents(tb testing.TB, e *env, n int) {
	tb.Helper()
	var got []*fluxauth.SecurityEvent
	for _, ev := range e.events(tb, fluxauth.EventFailedLogin) {
		if ev.Metadata["reason"] == account.ReasonReplayed && ev.Metadata["detail"] == account.ReasonReplayed {
			got = append(got, ev)
		}
	}
	if len(got) != n {
		tb.Fatalf("%d failed_login events with detail replayed, want %d", len(got), n)
	}
	for _, ev := range got {
		if ev.Metadata["reason"] != account.ReasonReplayed || ev.Metadata["provider"] != "google" || ev.Severity != fluxauth.SeverityWarning {
			tb.Fatalf("replay event %+v", ev)
		}
	}
}

// An ID token for several audiences was issued to its azp (OpenID Connect Core 3.1.3.7): one issued
// to another app that lists ours among its audiences signs no one in; with our client id as azp it
// does.
func TestIDTokenForSeveralAudiencesNeedsOurClientAsAuthorizedParty(t *testing.T) {
	p := newProviderEnv(t)
	refused := map[string]func(map[string]any){
		"no azp":                     func(c map[string]any) { c["aud"] = []string{"other-app", oidctest.ClientID} },
		"azp not configured":         func(c map[string]any) { c["aud"], c["azp"] = []string{"other-app", oidctest.ClientID}, "other-app" },
		"azp not among the aud":      func(c map[string]any) { c["aud"], c["azp"] = []string{"other-app", oidctest.ClientID}, "web-client" },
		"azp a stranger, not in aud": func(c map[string]any) { c["aud"], c["azp"] = []string{"other-app", oidctest.ClientID}, "stranger" },
	}
	for name, mutate := range refused {
		for _, provider := range []string{"google", "apple"} {
			iss := p.google
			if provider == "apple" {
				iss = p.apple
			}
			c := iss.Claims()
			mutate(c)
			res := p.do(t, "POST", "/api/auth/"+provider, map[string]string{"idToken": iss.Sign(t, c)})
			wantCode(t, provider+", "+name, res, http.StatusUnauthorized, "invalid_id_token")
		}
	}
	if n := len(p.events(t, fluxauth.EventSignup)); n != 0 {
		t.Fatalf("%d accounts created by refused tokens", n)
	}
	for _, ev := range p.events(t, fluxauth.EventFailedLogin) {
		if !strings.Contains(fmt.Sprint(ev.Metadata["detail"]), "authorized_party") {
			t.Fatalf("failed_login %+v does not say authorized_party", ev.Metadata)
		}
	}
	tok := p.googleToken(t, func(c map[string]any) {
		c["aud"], c["azp"] = []string{"other-app", oidctest.ClientID}, oidctest.ClientID
	})
	wantStatus(t, "azp ours and among the aud", p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok}), http.StatusCreated)
}
