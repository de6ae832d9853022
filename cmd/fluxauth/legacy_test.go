package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// serve will not start with the legacy secret equal to its own HS256 secret (any service holding
// that one could mint tokens to exchange for anyone's session), nor with the secret and no end,
// and says which variable to fix without echoing the secret.
func TestServeRefusesALegacySecretEqualToItsOwnOrWithoutAnEnd(t *testing.T) {
	const secret = "the-shared-hs256-secret-of-32-bytes-or-more"
	for _, tc := range []struct {
		name, names string
		env         []string
	}{
		{"equal to FLUXAUTH_JWT_SECRET", "FLUXAUTH_LEGACY_JWT_SECRET", []string{"FLUXAUTH_JWT_ALG=HS256", "FLUXAUTH_JWT_SECRET=" + secret,
			"FLUXAUTH_LEGACY_JWT_SECRET=" + secret, "FLUXAUTH_LEGACY_JWT_UNTIL=2027-03-01T00:00:00Z"}},
		{"without FLUXAUTH_LEGACY_JWT_UNTIL", "FLUXAUTH_LEGACY_JWT_UNTIL", []string{"FLUXAUTH_LEGACY_JWT_SECRET=" + secret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, t.TempDir(), tc.env, "serve")
			if err == nil {
				t.Fatalf("serve started: %s", out)
			}
			if !strings.Contains(out, tc.names) || strings.Contains(out, secret) {
				t.Fatalf("serve's refusal does not name %s, or echoes the secret: %s", tc.names, out)
			}
		})
	}
}

// The cutover as the team runs it: the legacy users imported, serve started with the legacy secret,
// and a browser holding the legacy server's token gets a session for its user without signing in.
func TestALegacyTokenIsExchangedByServeForAnImportedUser(t *testing.T) {
	const secret = "legacy-app-secret"
	dir := t.TempDir()
	file := filepath.Join(dir, "legacy.jsonl")
	if err := os.WriteFile(file, []byte(jsonLine(map[string]any{"id": "123", "email": "legacy@example.com", "name": "Legacy",
		"passwordHash": bcryptOf(t, "correct horse battery", 4)})+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, dir, nil, "migrate", "up"); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	if out, err := runCLI(t, dir, nil, "users", "import", file); err != nil {
		t.Fatalf("import: %v %s", err, out)
	}
	_, url, logs := startServe(t, dir, "FLUXAUTH_LEGACY_JWT_SECRET="+secret,
		"FLUXAUTH_LEGACY_JWT_UNTIL="+time.Now().Add(30*24*time.Hour).UTC().Format(time.RFC3339))
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"id": 123, "email": "legacy@example.com", "iat": time.Now().Add(-time.Hour).Unix(),
		"exp": time.Now().Add(6 * 24 * time.Hour).Unix()}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if me := get(t, url+"/api/auth/me", tok); !strings.Contains(me, `"invalid_token"`) {
		t.Fatalf("/me took the legacy token: %s", me)
	}
	access := accessOver(t, url+"/api/auth/legacy/exchange", `{"token":"`+tok+`"}`, 200)
	if me := get(t, url+"/api/auth/me", access); !strings.Contains(me, `"id":"123"`) {
		t.Fatalf("/me after the exchange: %s", me)
	}
	if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), secret) {
		t.Fatal("serve logged the legacy token or secret")
	}
}
