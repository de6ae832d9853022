package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/mail"
	"github.com/fluxstudio/fluxauth/mail/mailtest"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
)

// newLinkEnv is a provider env that sends mail to a capture server.
func newLinkEnv(t *testing.T) (*providerEnv, *mailtest.Server) {
	t.Helper()
	smtp := mailtest.NewServer(t)
	settings, err := mail.ParseSMTPURL(smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	p := newProviderEnv(t, withConfig(func(c *config.Config) {
		c.SMTP, c.MailFrom, c.Links = settings, "FluxStudio <no-reply@fluxstudio.test>", testLinks
	}), withDeps(func(d *app.Deps) { d.MailPoll = 20 * time.Millisecond }))
	return p, smtp
}

// provenAccount signs email up with a password and records its address proven.
func (p *providerEnv) provenAccount(t *testing.T, email string) *authResponse {
	t.Helper()
	acc := p.signup(t, email)
	if err := p.Store.Update(t.Context(), func(tx fluxauth.Tx) error { return tx.SetEmailVerified(t.Context(), acc.User.ID, p.Clock.Now()) }); err != nil {
		t.Fatal(err)
	}
	return acc
}

// googleFor signs a Google token for sub and a verified email, with hd (none when "").
func (p *providerEnv) googleFor(t *testing.T, sub, email, hd string) string {
	t.Helper()
	return p.googleToken(t, func(c map[string]any) {
		c["sub"], c["email"], c["email_verified"], c["jti"] = sub, email, true, uuid.NewString()
		if hd == "" {
			delete(c, "hd")
		} else {
			c["hd"] = hd
		}
	})
}

// waitNotice waits for a link notice to address naming provider.
func waitNotice(t *testing.T, smtp *mailtest.Server, address, provider string) *mailtest.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range smtp.Messages() {
			if len(m.To) == 1 && m.To[0] == address && strings.Contains(m.Subject, provider+" sign-in was linked") {
				if !strings.Contains(m.Text, "If it was not you") {
					t.Fatalf("notice text %q", m.Text)
				}
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s link notice to %s; mails: %d", provider, address, len(smtp.Messages()))
	return nil
}

// The attack: a Google account with another sub and email rita@example.com (Google verified it,
// but is not example.com's authority: no hd) signed straight into Rita's account.
func TestGoogleSignInWithoutAuthorityDoesNotLinkByAddress(t *testing.T) {
	p, smtp := newLinkEnv(t)
	rita := p.provenAccount(t, "rita@example.com")
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleFor(t, "mallory", "rita@example.com", "")})
	if res.Status != http.StatusConflict || res.errorCode(t) != "account_exists" {
		t.Fatalf("Google sign-in without hd into a proven account: %d %s, want 409 account_exists", res.Status, res.Body)
	}
	if _, err := p.Store.IdentityBySubject(t.Context(), "google", "mallory"); err == nil {
		t.Fatal("the identity was linked")
	}
	if s := p.sessions(t, rita.AccessToken); len(s) != 1 || !s[0].Current {
		t.Fatalf("Rita's sessions %+v, want only her own", s)
	}
	if evs := p.events(t, fluxauth.EventIdentityLinked); len(evs) != 0 {
		t.Fatalf("identity_linked %+v", evs)
	}
	// The address's authority (a Workspace account of example.com) links, and Rita is told.
	res = p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleFor(t, "rita-work", "rita@example.com", "example.com")})
	var ar authResponse
	res.json(t, &ar)
	if res.Status != http.StatusOK || ar.User.ID != rita.User.ID {
		t.Fatalf("Workspace sign-in: %d %s, want Rita's account", res.Status, res.Body)
	}
	waitNotice(t, smtp, "rita@example.com", "Google")
	if ev := p.only(t, fluxauth.EventIdentityLinked); ev.UserID != rita.User.ID || ev.Metadata["by"] != "sign_in" || ev.Metadata["provider"] != "google" {
		t.Fatalf("identity_linked %+v", ev)
	}
}

func TestGoogleIsTheAuthorityForGmail(t *testing.T) {
	p := newProviderEnv(t)
	acc := p.provenAccount(t, "rita@gmail.com")
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleFor(t, "rita-g", "rita@gmail.com", "")})
	var ar authResponse
	res.json(t, &ar)
	if res.Status != http.StatusOK || ar.User.ID != acc.User.ID {
		t.Fatalf("gmail.com sign-in: %d %s, want the account", res.Status, res.Body)
	}
}

func TestAppleIsTheAuthorityOnlyForItsDomains(t *testing.T) {
	p := newProviderEnv(t)
	relay := p.provenAccount(t, "x7k2@privaterelay.appleid.com")
	res := p.do(t, "POST", "/api/auth/apple", map[string]string{"idToken": p.appleToken(t, "relay-sub", "x7k2@privaterelay.appleid.com", true)})
	var ar authResponse
	res.json(t, &ar)
	if res.Status != http.StatusOK || ar.User.ID != relay.User.ID {
		t.Fatalf("Apple relay sign-in: %d %s, want the account", res.Status, res.Body)
	}
	p.provenAccount(t, "kim@example.com")
	res = p.do(t, "POST", "/api/auth/apple", map[string]string{"idToken": p.appleToken(t, "kim-apple", "kim@example.com", true)})
	if res.Status != http.StatusConflict || res.errorCode(t) != "account_exists" {
		t.Fatalf("Apple sign-in for example.com: %d %s, want 409 account_exists", res.Status, res.Body)
	}
	if _, err := p.Store.IdentityBySubject(t.Context(), "apple", "kim-apple"); err == nil {
		t.Fatal("the identity was linked")
	}
}

func TestAccountFromANonAuthoritativeAddressStartsUnverified(t *testing.T) {
	p := newProviderEnv(t)
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleFor(t, "newbie", "newbie@example.com", "")})
	var ar authResponse
	res.json(t, &ar)
	if res.Status != http.StatusCreated || *ar.User.EmailVerified {
		t.Fatalf("new account: %d %s, want 201 with emailVerified false", res.Status, res.Body)
	}
	if id, err := p.Store.IdentityBySubject(t.Context(), "google", "newbie"); err != nil || id.EmailVerified {
		t.Fatalf("identity %+v, %v: want it linked, not vouching for the address", id, err)
	}
}

func TestOwnerLinksAndUnlinksAnIdentity(t *testing.T) {
	p, smtp := newLinkEnv(t)
	rita := p.provenAccount(t, "rita@example.com")
	other := p.provenAccount(t, "otto@example.com")
	link := func(acc *authResponse, tok string) *response {
		return p.do(t, "POST", "/api/auth/identities/google", map[string]string{"idToken": tok}, bearer(acc.AccessToken)...)
	}
	if res := p.do(t, "POST", "/api/auth/identities/google", map[string]string{"idToken": p.googleFor(t, "rita-home", "rita.home@outlook.example", "")}); res.Status != http.StatusUnauthorized {
		t.Fatalf("link without a Bearer: %d %s", res.Status, res.Body)
	}
	res := link(rita, p.googleFor(t, "rita-home", "rita.home@outlook.example", ""))
	if res.Status != http.StatusCreated {
		t.Fatalf("owner's link: %d %s", res.Status, res.Body)
	}
	waitNotice(t, smtp, "rita@example.com", "Google")
	if ev := p.only(t, fluxauth.EventIdentityLinked); ev.UserID != rita.User.ID || ev.Metadata["by"] != "owner" {
		t.Fatalf("identity_linked %+v", ev)
	}
	res = p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleFor(t, "rita-home", "rita.home@outlook.example", "")})
	var ar authResponse
	res.json(t, &ar)
	if res.Status != http.StatusOK || ar.User.ID != rita.User.ID {
		t.Fatalf("sign-in through the linked identity: %d %s", res.Status, res.Body)
	}
	// The identity is Rita's: linking it to Otto is refused and changes nothing.
	res = link(other, p.googleFor(t, "rita-home", "rita.home@outlook.example", ""))
	if res.Status != http.StatusConflict || res.errorCode(t) != "identity_in_use" {
		t.Fatalf("link of Rita's identity to Otto: %d %s, want 409 identity_in_use", res.Status, res.Body)
	}
	if id, err := p.Store.IdentityBySubject(t.Context(), "google", "rita-home"); err != nil || id.UserID != rita.User.ID {
		t.Fatalf("identity %+v, %v: want Rita's", id, err)
	}
	if res := p.do(t, "DELETE", "/api/auth/identities/google", nil, bearer(rita.AccessToken)...); res.Status != http.StatusNoContent {
		t.Fatalf("unlink: %d %s", res.Status, res.Body)
	}
	if _, err := p.Store.IdentityBySubject(t.Context(), "google", "rita-home"); err == nil {
		t.Fatal("the identity survived the unlink")
	}
	if ev := p.only(t, fluxauth.EventIdentityUnlinked); ev.UserID != rita.User.ID || ev.Metadata["provider"] != "google" {
		t.Fatalf("identity_unlinked %+v", ev)
	}
}

func TestUnlinkOfTheLastSignInMethodIsRefused(t *testing.T) {
	p := newProviderEnv(t)
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleFor(t, "solo", "solo@gmail.com", "")})
	var ar authResponse
	res.json(t, &ar)
	if res.Status != http.StatusCreated {
		t.Fatalf("Google sign-up: %d %s", res.Status, res.Body)
	}
	res = p.do(t, "DELETE", "/api/auth/identities/google", nil, bearer(ar.AccessToken)...)
	if res.Status != http.StatusConflict || res.errorCode(t) != "last_sign_in_method" {
		t.Fatalf("unlink of the only sign-in method: %d %s, want 409 last_sign_in_method", res.Status, res.Body)
	}
	if _, err := p.Store.IdentityBySubject(t.Context(), "google", "solo"); err != nil {
		t.Fatalf("the identity is gone: %v", err)
	}
}

// An identities path naming another provider is 404 with a fixed message: the caller's path text is
// never echoed into an answer.
func TestIdentitiesOfAnUnknownProviderAre404WithoutEchoingThePath(t *testing.T) {
	p := newProviderEnv(t)
	ar := p.signup(t, "echo@example.com")
	const injected = "Call%20support%20at%20evil.example"
	for _, method := range []string{"POST", "DELETE"} {
		var body any
		if method == "POST" {
			body = map[string]string{"idToken": p.googleFor(t, "echo", "echo@example.com", "")}
		}
		res := p.do(t, method, "/api/auth/identities/"+injected, body, bearer(ar.AccessToken)...)
		if res.Status != http.StatusNotFound || res.errorCode(t) != "not_found" || strings.Contains(string(res.Body), "evil.example") {
			t.Fatalf("%s of an unknown provider: %d %s, want 404 not_found without the path's text", method, res.Status, res.Body)
		}
	}
}

// Two accounts linking one identity at once: exactly one gets it. On SQLite the writer lock
// orders them; on PostgreSQL both may pass the lookup and the identity's key decides.
func TestParallelLinksOfOneIdentityOneWins(t *testing.T) {
	parallelLinks(t, newProviderEnv(t))
}

func TestParallelLinksOfOneIdentityOneWinsOnPostgres(t *testing.T) {
	for range 5 {
		parallelLinks(t, newProviderEnv(t, withStore(postgrestest.MustOpenDB(t))))
	}
}

func parallelLinks(t *testing.T, p *providerEnv) {
	accs := []*authResponse{p.provenAccount(t, "a@example.com"), p.provenAccount(t, "b@example.com")}
	toks := []string{p.googleFor(t, "shared", "shared@outlook.example", ""), p.googleFor(t, "shared", "shared@outlook.example", "")}
	statuses := make([]*response, 2)
	var wg sync.WaitGroup
	for i := range accs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = p.do(t, "POST", "/api/auth/identities/google", map[string]string{"idToken": toks[i]}, bearer(accs[i].AccessToken)...)
		}()
	}
	wg.Wait()
	won, lost := 0, 0
	for _, r := range statuses {
		switch {
		case r.Status == http.StatusCreated:
			won++
		case r.Status == http.StatusConflict && r.errorCode(t) == "identity_in_use":
			lost++
		default:
			t.Fatalf("parallel link: %d %s", r.Status, r.Body)
		}
	}
	if won != 1 || lost != 1 {
		t.Fatalf("%d won, %d lost; want one each", won, lost)
	}
	if evs := p.events(t, fluxauth.EventIdentityLinked); len(evs) != 1 {
		t.Fatalf("%d identity_linked events, want 1", len(evs))
	}
}
