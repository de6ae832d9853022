package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth/token"
)

// With HS256, serve checks that an access token's session is its subject's: any service holding the
// shared secret could otherwise sign another user's sub onto a live session.
func TestServeWithHS256RefusesATokenForAnotherUsersSession(t *testing.T) {
	const secret = "a-legacy-shared-secret-of-32-bytes-at-least"
	_, url, _ := startServe(t, t.TempDir(), "FLUXAUTH_ISSUER=http://fluxauth.test", "FLUXAUTH_JWT_ALG=HS256", "FLUXAUTH_JWT_SECRET="+secret)
	signup := func(email string) (userID, access string) {
		t.Helper()
		res, err := http.Post(url+"/api/auth/signup", "application/json",
			strings.NewReader(`{"email":"`+email+`","password":"correct horse battery","name":"H"}`))
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("signup: %v %v", err, res)
		}
		defer res.Body.Close()
		var ar struct {
			AccessToken string `json:"accessToken"`
			User        struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		if err := json.NewDecoder(res.Body).Decode(&ar); err != nil {
			t.Fatal(err)
		}
		return ar.User.ID, ar.AccessToken
	}
	_, victimToken := signup("victim@example.com")
	attackerID, _ := signup("attacker@example.com")

	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(victimToken, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	other, err := token.NewIssuer(token.Config{Issuer: "http://fluxauth.test", Audience: "fluxstudio", HMACSecret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := other.Sign(token.Claims{UserID: attackerID, SessionID: claims.SID})
	if err != nil {
		t.Fatal(err)
	}
	if me := get(t, url+"/api/auth/me", forged); !strings.Contains(me, `"invalid_token"`) {
		t.Fatalf("a token for another user's session was accepted: %s", me)
	}
	if me := get(t, url+"/api/auth/me", victimToken); !strings.Contains(me, "victim@example.com") {
		t.Fatalf("the session's own token: %s", me)
	}
}
