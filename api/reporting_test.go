package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// faultyStore fails UserByEmail the way a broken database or a bug would, by email.
type faultyStore struct{ fluxauth.Backend }

func (s faultyStore) UserByEmail(ctx context.Context, email string) (*fluxauth.User, error) {
	switch email {
	case "panic@example.com":
		panic("store exploded")
	case "fail@example.com":
		return nil, errors.New("store failed")
	}
	return s.Backend.UserByEmail(ctx, email)
}

// reportingServer serves the API over a faultyStore with JSON logs, the login lockout at 1/1h:1, and
// the 429 hook recording the client IPs it is told.
func reportingServer(t *testing.T) (url string, logs *testenv.Buffer, limited func() []string) {
	t.Helper()
	var mu sync.Mutex
	var ips []string
	e := newEnv(t, withStore(faultyStore{sqlitetest.MustOpenDB(t)}), withConfig(func(c *config.Config) {
		c.Rules = ratelimit.Rules{Lockout: ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 1}}
	}), withDeps(func(d *app.Deps) {
		d.RateLimited = func(ip string) { mu.Lock(); ips = append(ips, ip); mu.Unlock() }
	}))
	return e.URL, e.Logs, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), ips...) }
}

func post(t *testing.T, url, body string, headers ...string) int {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// errorRecords returns the error-level log records.
func errorRecords(t *testing.T, logs *testenv.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["level"] == "ERROR" {
			out = append(out, rec)
		}
	}
	return out
}

// A 500 and a panic are each one error-level record with the request ID, route pattern, method and
// status: that record is what reaches Sentry, so one failure must make exactly one. The panic is
// recovered outside the mux, where the request is not yet routed: its route is looked up.
func TestEveryServerErrorIsOneErrorRecordWithItsRoute(t *testing.T) {
	for _, c := range []struct{ email, msg, detailKey, detail string }{
		{"fail@example.com", "request failed", "err", "store failed"},
		{"panic@example.com", "panic in handler", "panic", "store exploded"},
	} {
		t.Run(c.msg, func(t *testing.T) {
			url, logs, _ := reportingServer(t)
			if got := post(t, url+"/api/auth/login", `{"email":"`+c.email+`","password":"x"}`, "X-Request-ID", "req-"+c.detailKey); got != 500 {
				t.Fatalf("status %d, want 500", got)
			}
			recs := errorRecords(t, logs)
			if len(recs) != 1 {
				t.Fatalf("%d error records, want 1: %s", len(recs), logs)
			}
			r := recs[0]
			for k, want := range map[string]any{"msg": c.msg, "request_id": "req-" + c.detailKey, "route": "POST /api/auth/login",
				"method": "POST", "status": float64(500), "code": "internal", c.detailKey: c.detail} {
				if r[k] != want {
					t.Errorf("%s = %v, want %v", k, r[k], want)
				}
			}
		})
	}
}

// Every 429 tells the hook the client IP, for the rate-limit alert.
func TestEvery429IsReportedWithTheClientIP(t *testing.T) {
	url, _, limited := reportingServer(t)
	body := `{"email":"ann@example.com","password":"wrong password"}`
	for range 4 {
		post(t, url+"/api/auth/login", body, "X-Forwarded-For", "203.0.113.9")
	}
	got := limited()
	if len(got) != 3 {
		t.Fatalf("hook told %v, want the 3 refusals after the lockout's one attempt", got)
	}
	for _, ip := range got {
		if ip != "203.0.113.9" {
			t.Fatalf("hook told %q, want the client IP", ip)
		}
	}
}

// Each login the lockout refuses is a failed_login (reason locked_out), so the failed-login alerts
// count them: under the default lockout an account gets only 10 password checks per 15 minutes.
func TestLockoutRefusalsAreFailedLogins(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) {
		c.Rules = ratelimit.Rules{Lockout: ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}}
	}))
	u := e.signup(t, "ann@example.com")
	for range 5 {
		e.do(t, "POST", "/api/auth/login", map[string]string{"email": "ann@example.com", "password": "wrong password"})
	}
	reasons := map[string]int{}
	for _, ev := range e.events(t, fluxauth.EventFailedLogin) {
		reasons[ev.Metadata["reason"].(string)]++
		if ev.UserID != u.User.ID {
			t.Errorf("failed_login against user %q, want %q", ev.UserID, u.User.ID)
		}
	}
	if reasons["wrong_password"] != 2 || reasons["locked_out"] != 3 {
		t.Fatalf("failed_login reasons %v, want 2 wrong_password and 3 locked_out", reasons)
	}
}
