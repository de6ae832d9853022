package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth/api"
)

// Every auth answer, success or failure, whatever layer wrote it, tells a browser not to sniff,
// not to send a Referer from it, and not to cache it.
func TestEveryAnswerCarriesTheBrowserDefaults(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "browser@example.com")
	big := `{"email":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`
	requests := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
	}{
		{"signup", "POST", "/api/auth/signup", map[string]string{"email": "b2@example.com", "password": "correct horse battery", "name": "B"}, nil, 201},
		{"failed login", "POST", "/api/auth/login", map[string]string{"email": "browser@example.com", "password": "wrong password"}, nil, 401},
		{"refresh", "POST", "/api/auth/refresh", map[string]string{"refreshToken": ar.RefreshToken}, nil, 200},
		{"me", "GET", "/api/auth/me", nil, bearer(ar.AccessToken), 200},
		{"sessions", "GET", "/api/auth/sessions", nil, bearer(ar.AccessToken), 200},
		{"validation", "POST", "/api/auth/login", map[string]string{"email": "a\x00b"}, nil, 422},
		{"body too large", "POST", "/api/auth/signup", big, nil, 413},
		{"unknown path", "GET", "/nope", nil, nil, 404},
		{"wrong method", "GET", "/api/auth/login", nil, nil, 405},
		{"healthz", "GET", "/healthz", nil, nil, 200},
		{"logout, no body", "POST", "/api/auth/logout", nil, bearer(ar.AccessToken), 204},
	}
	for _, c := range requests {
		t.Run(c.name, func(t *testing.T) {
			res := e.do(t, c.method, c.path, c.body, c.headers...)
			if res.Status != c.status {
				t.Fatalf("%d %s; want %d", res.Status, res.Body, c.status)
			}
			for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
				if got := res.Header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
		})
	}
}

func TestCORSIsAnsweredOnlyForTheListedOrigins(t *testing.T) {
	const app, evil = "https://app.example.com", "https://evil.example.net"
	preflight := func(e *env, origin string) *response {
		return e.do(t, "OPTIONS", "/api/auth/login", nil, "Origin", origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type, x-device-fingerprint")
	}
	login := func(e *env, origin string) *response {
		return e.do(t, "POST", "/api/auth/login", map[string]string{"email": "nobody@example.com", "password": "wrong password"}, "Origin", origin)
	}

	t.Run("none by default", func(t *testing.T) {
		e := newEnv(t)
		for _, res := range []*response{preflight(e, app), login(e, app)} {
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Fatalf("%d answered CORS for %q", res.Status, got)
			}
		}
	})

	e := newEnv(t, withCORSOrigins(app, "http://localhost:3000"))
	t.Run("a listed origin's preflight", func(t *testing.T) {
		res := preflight(e, app)
		if res.Status != http.StatusNoContent {
			t.Fatalf("preflight: %d %s", res.Status, res.Body)
		}
		want := map[string]string{
			"Access-Control-Allow-Origin":  app,
			"Access-Control-Allow-Methods": "GET, POST, DELETE",
			"Access-Control-Allow-Headers": "Authorization, Content-Type, X-Device-Fingerprint, X-Request-ID",
		}
		for h, v := range want {
			if got := res.Header.Get(h); got != v {
				t.Errorf("%s: %q, want %q", h, got, v)
			}
		}
		if res.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Error("credentials allowed: no cookie is ever involved")
		}
		if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("Vary %q lacks Origin", res.Header.Values("Vary"))
		}
	})
	t.Run("a listed origin's request", func(t *testing.T) {
		res := login(e, app)
		if res.Status != http.StatusUnauthorized || res.Header.Get("Access-Control-Allow-Origin") != app {
			t.Fatalf("%d, Allow-Origin %q", res.Status, res.Header.Get("Access-Control-Allow-Origin"))
		}
		if !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
			t.Errorf("Expose-Headers %q", res.Header.Get("Access-Control-Expose-Headers"))
		}
		if res.Header.Get("Vary") != "Origin" {
			t.Errorf("Vary %q, want Origin", res.Header.Get("Vary"))
		}
	})
	t.Run("another origin", func(t *testing.T) {
		for _, origin := range []string{evil, "https://app.example.com.evil.example.net", "null", "HTTPS://APP.EXAMPLE.COM"} {
			res := preflight(e, origin)
			if res.Status == http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("preflight from %s: %d, Allow-Origin %q", origin, res.Status, res.Header.Get("Access-Control-Allow-Origin"))
			}
			res = login(e, origin)
			if res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Vary") != "Origin" {
				t.Fatalf("request from %s: Allow-Origin %q, Vary %q", origin, res.Header.Get("Access-Control-Allow-Origin"), res.Header.Get("Vary"))
			}
		}
	})
}
