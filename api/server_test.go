package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

func TestErrorsUseTheStandardBody(t *testing.T) {
	e := newEnv(t)
	big := `{"email":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"unknown route is 404 not_found", "GET", "/nope", nil, 404, "not_found"},
		{"malformed JSON is 400 invalid_json", "POST", "/api/auth/login", `{"email":`, 400, "invalid_json"},
		{"unknown field is 400 invalid_json", "POST", "/api/auth/login", `{"email":"a@b.co","password":"x","admin":true}`, 400, "invalid_json"},
		{"empty body is 400 invalid_json", "POST", "/api/auth/login", "", 400, "invalid_json"},
		{"two JSON values are 400 invalid_json", "POST", "/api/auth/login", `{} {}`, 400, "invalid_json"},
		{"wrong field type is 400 invalid_json", "POST", "/api/auth/login", `{"email":5}`, 400, "invalid_json"},
		{"body over 64 KiB is 413 request_too_large", "POST", "/api/auth/signup", big, 413, "request_too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := e.do(t, c.method, c.path, c.body)
			if res.Status != c.status {
				t.Fatalf("status %d, want %d: %s", res.Status, c.status, res.Body)
			}
			if got := res.errorCode(t); got != c.code {
				t.Fatalf("code %q, want %q", got, c.code)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("content type %q", ct)
			}
		})
	}
}

// The catch-all route that gives unknown paths the standard body used to hide the mux's 405.
func TestAWrongMethodIs405WithAllow(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ method, path, allow string }{
		{"PUT", "/api/auth/login", "POST"},
		{"GET", "/api/auth/login", "POST"},
		{"POST", "/api/auth/me", "GET, HEAD"},
		{"GET", "/api/auth/sessions/0190c0de-0000-7000-8000-000000000000", "DELETE"},
		{"DELETE", "/healthz", "GET, HEAD"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			res := e.do(t, c.method, c.path, nil)
			if res.Status != http.StatusMethodNotAllowed || res.errorCode(t) != "method_not_allowed" {
				t.Fatalf("%d %s; want 405 method_not_allowed", res.Status, res.Body)
			}
			if got := res.Header.Get("Allow"); got != c.allow {
				t.Fatalf("Allow %q, want %q", got, c.allow)
			}
		})
	}
	if res := e.do(t, "PUT", "/api/auth/nope", nil); res.Status != http.StatusNotFound || res.Header.Get("Allow") != "" {
		t.Fatalf("unknown path: %d, Allow %q", res.Status, res.Header.Get("Allow"))
	}
}

func TestBodyOverLimitWithoutContentLengthIsRejected(t *testing.T) {
	e := newEnv(t)
	// A chunked body has no Content-Length, so only the reader's limit can catch it.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"email":"`))
		pw.Write([]byte(strings.Repeat("a", api.MaxBodyBytes+10)))
		pw.Write([]byte(`"}`))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", e.URL+"/api/auth/login", pr)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("status %d, want 413", res.StatusCode)
	}
	if n := len(e.events(t, "failed_login")); n != 0 {
		t.Fatalf("a rejected request changed state: %d events", n)
	}
}

func TestRequestIDIsEchoedOrGeneratedAndLogged(t *testing.T) {
	e := newEnv(t)
	res := e.do(t, "GET", "/healthz", nil, "X-Request-ID", "abc-123")
	if got := res.Header.Get("X-Request-ID"); got != "abc-123" {
		t.Fatalf("echoed %q", got)
	}
	if !strings.Contains(e.Logs.String(), `"request_id":"abc-123"`) {
		t.Fatalf("log lacks the request id:\n%s", e.Logs)
	}
	res = e.do(t, "GET", "/healthz", nil)
	if len(res.Header.Get("X-Request-ID")) != 32 {
		t.Fatalf("generated id %q", res.Header.Get("X-Request-ID"))
	}
	res = e.do(t, "GET", "/healthz", nil, "X-Request-ID", "bad id\twith spaces")
	if got := res.Header.Get("X-Request-ID"); got == "bad id\twith spaces" || len(got) != 32 {
		t.Fatalf("malformed id was echoed: %q", got)
	}
}

func TestPanicBecomesInternalWithoutLeakingItsText(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, withStore(pingStore{sqlitetest.MustOpenDB(t), func(context.Context) error {
		calls.Add(1)
		panic("secret-panic-detail")
	}}))
	logs := e.Logs
	res, err := http.Get(e.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res)
	if res.StatusCode != 500 || !strings.Contains(body, `"internal"`) {
		t.Fatalf("got %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, "secret-panic-detail") {
		t.Fatal("panic text reached the client")
	}
	if !strings.Contains(logs.String(), "secret-panic-detail") {
		t.Fatal("panic text missing from the log")
	}
}

func TestHealthzAndReadyz(t *testing.T) {
	e := newEnv(t)
	if res := e.do(t, "GET", "/healthz", nil); res.Status != 200 {
		t.Fatalf("healthz %d", res.Status)
	}
	if res := e.do(t, "GET", "/readyz", nil); res.Status != 200 {
		t.Fatalf("readyz %d %s", res.Status, res.Body)
	}
}

func TestReadyzIs503WhenTheDatabaseFails(t *testing.T) {
	var down atomic.Bool
	e := newEnv(t, withStore(pingStore{sqlitetest.MustOpenDB(t), func(context.Context) error {
		if down.Load() {
			return errors.New("dial tcp: connection refused")
		}
		return nil
	}}))
	down.Store(true)
	res, _ := http.Get(e.URL + "/readyz")
	body := readAll(t, res)
	if res.StatusCode != 503 || !strings.Contains(body, "database_unavailable") || strings.Contains(body, "connection refused") {
		t.Fatalf("got %d %s", res.StatusCode, body)
	}
	down.Store(false)
	res, _ = http.Get(e.URL + "/readyz")
	if res.StatusCode != 200 {
		t.Fatalf("did not recover: %d", res.StatusCode)
	}
	res.Body.Close()
}

// pingStore is a store whose Ping is ping: the database as /readyz sees it.
type pingStore struct {
	fluxauth.Backend
	ping func(context.Context) error
}

func (s pingStore) Ping(ctx context.Context) error { return s.ping(ctx) }
