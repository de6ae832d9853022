package api_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// providerToken signs a Google ID token for sub and email; each token is distinct (its own jti),
// as every real sign-in's is.
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
