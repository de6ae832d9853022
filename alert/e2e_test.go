package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/alert"
	"github.com/fluxstudio/fluxauth/alert/alerttest"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/internal/testserver"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// faultyStore fails the way a broken database or a bug would, chosen by the email looked up:
// "panic…" panics and "fail…" fails, both with text that names the email (so each address is a
// distinct error), and "leak…" fails with an error that echoes secrets, as drivers echo DSNs.
type faultyStore struct {
	fluxauth.Backend
	leak string
}

func (s faultyStore) UserByEmail(ctx context.Context, email string) (*fluxauth.User, error) {
	switch {
	case strings.HasPrefix(email, "panic"):
		panic("store exploded looking up " + email + s.leak)
	case strings.HasPrefix(email, "fail"):
		return nil, errors.New("store failed for " + email)
	case strings.HasPrefix(email, "leak"):
		return nil, fmt.Errorf("query users: %s", s.leak)
	}
	return s.Backend.UserByEmail(ctx, email)
}

// stack is one fluxauth instance built as serve builds it (package app): the API, its audit
// recorder, Sentry on the logger, and the alert monitor on the recorder's subscription, with the
// webhook and Sentry as sinks.
type stack struct {
	URL      string
	Clock    *testenv.Clock
	Recorder *audit.Recorder
	Sentry   *alert.Sentry
	Webhook  *alert.Webhook
	app      *app.App
	Logger   *slog.Logger
}

// countEvery is how often the stack's alert monitor adds up its counts, on the stack's clock.
const countEvery = 10 * time.Millisecond

type stackConfig struct {
	dsn        string // empty: no Sentry
	webhookURL string // empty: no webhook
	jwtSecret  string // a configured secret the scrubber knows by value
	leak       string
	rules      ratelimit.Rules
}

func newStack(t *testing.T, c stackConfig) *stack {
	t.Helper()
	st := &stack{Clock: testenv.NewClock(time.Now())}
	cfg := testserver.Config(t)
	cfg.Rules = c.rules
	cfg.SentryDSN, cfg.SentryEnvironment, cfg.AlertWebhookURL = c.dsn, "test", c.webhookURL
	cfg.JWTSecret = c.jwtSecret
	a := testserver.Start(t, cfg, app.Deps{
		Clock: st.Clock, Store: faultyStore{Backend: sqlitetest.MustOpenDB(t), leak: c.leak}, Version: "9.9.9", Hostname: "auth-1",
		Audit: audit.Config{FlushInterval: time.Millisecond}, AlertCountEvery: countEvery, WebhookBackoff: 10 * time.Millisecond,
	})
	st.URL, st.Recorder, st.Sentry, st.Webhook, st.Logger, st.app = a.URL(), a.Recorder, a.Sentry, a.Webhook, a.Logger, a
	return st
}

// call sends a JSON request and returns the status and body.
func (st *stack) call(t *testing.T, method, path string, body any, headers ...string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, st.URL+path, rd)
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
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

type tokens struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	User         struct {
		ID string `json:"id"`
	} `json:"user"`
}

func (st *stack) signup(t *testing.T, email, password string) tokens {
	t.Helper()
	status, body := st.call(t, "POST", "/api/auth/signup", map[string]string{"email": email, "password": password, "name": "Ann"})
	if status != http.StatusCreated {
		t.Fatalf("signup: %d %s", status, body)
	}
	var tk tokens
	if err := json.Unmarshal(body, &tk); err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestAPanicInAHandlerIsReportedWithItsStack(t *testing.T) {
	ingest := alerttest.NewSentry(t)
	st := newStack(t, stackConfig{dsn: ingest.DSN()})
	if status, _ := st.call(t, "POST", "/api/auth/login", map[string]string{"email": "panic@example.com", "password": "x"}, "X-Request-ID", "req-panic-1"); status != 500 {
		t.Fatalf("status %d", status)
	}
	ev := ingest.WaitFor(t, wait, func(e alerttest.Event) bool { return e.Message == "panic in handler" })
	if len(ev.Exception) != 1 || ev.Exception[0].Type != "panic" || !strings.Contains(ev.Exception[0].Value, "store exploded") {
		t.Fatalf("exception %+v", ev.Exception)
	}
	if !ev.HasFrame("faultyStore.UserByEmail") {
		t.Errorf("the stack does not reach the panic: %s", ev.Raw)
	}
	for k, want := range map[string]string{"request_id": "req-panic-1", "route": "POST /api/auth/login", "method": "POST", "status": "500"} {
		if ev.Tags[k] != want {
			t.Errorf("tag %s = %q, want %q", k, ev.Tags[k], want)
		}
	}
	if ev.Release != "9.9.9" || ev.Environment != "test" || ev.ServerName != "auth-1" || ev.Transaction != "POST /api/auth/login" {
		t.Errorf("release %q environment %q server %q transaction %q", ev.Release, ev.Environment, ev.ServerName, ev.Transaction)
	}
	st.Sentry.Flush(context.Background())
	if n := len(ingest.Events()); n != 1 {
		t.Fatalf("%d events for one panic, want 1", n)
	}
}

func TestA500IsReportedWithTheRequestID(t *testing.T) {
	ingest := alerttest.NewSentry(t)
	st := newStack(t, stackConfig{dsn: ingest.DSN()})
	if status, _ := st.call(t, "POST", "/api/auth/login", map[string]string{"email": "fail@example.com", "password": "x"}, "X-Request-ID", "req-500"); status != 500 {
		t.Fatalf("status %d", status)
	}
	ev := ingest.Next(t, wait)
	if ev.Message != "request failed" || ev.Tags["request_id"] != "req-500" || ev.Tags["route"] != "POST /api/auth/login" || ev.Tags["code"] != "internal" {
		t.Fatalf("event %s", ev.Raw)
	}
	if last := ev.Exception[len(ev.Exception)-1]; last.Value != "store failed for fail@example.com" {
		t.Fatalf("exception %+v", ev.Exception)
	}
}

// A reused refresh token is a session_hijack_attempt, critical: it reaches Sentry as an error-level
// event and the webhook within 2 seconds of the request.
func TestACriticalEventIsAlertedWithinTwoSeconds(t *testing.T) {
	ingest := alerttest.NewSentry(t)
	rx := alerttest.NewWebhook(t, 0)
	hook, _ := rx.URL()
	st := newStack(t, stackConfig{dsn: ingest.DSN(), webhookURL: hook})
	tk := st.signup(t, "ann@example.com", "correct horse battery")
	// Two rotations, so that presenting the first token again can only be reuse (the token before
	// the live one would be taken for a lost response and handed its successor again).
	next := tk
	for range 2 {
		status, body := st.call(t, "POST", "/api/auth/refresh", map[string]string{"refreshToken": next.RefreshToken})
		if status != 200 {
			t.Fatalf("refresh: %d %s", status, body)
		}
		json.Unmarshal(body, &next)
	}
	st.Clock.Advance(config.Default().Account.RefreshGrace + time.Second)
	start := time.Now()
	if status, _ := st.call(t, "POST", "/api/auth/refresh", map[string]string{"refreshToken": tk.RefreshToken}, "X-Forwarded-For", "203.0.113.66"); status != 401 {
		t.Fatalf("reuse: %d", status)
	}
	ev := ingest.WaitFor(t, 2*time.Second, func(e alerttest.Event) bool { return e.Tags["alert"] == alert.KindSecurityEvent })
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("alert after %s", took)
	}
	if ev.Level != "error" || ev.Tags["event_type"] != "session_hijack_attempt" || ev.Tags["severity"] != "critical" ||
		ev.Tags["user_id"] != tk.User.ID || ev.Tags["ip"] != "203.0.113.66" || !slices.Equal(ev.Fingerprint, []string{"fluxauth-alert", "session_hijack_attempt"}) {
		t.Fatalf("alert event %s", ev.Raw)
	}
	d := rx.Next(t, 2*time.Second-time.Since(start))
	if a := d.Alert(); a["type"] != "session_hijack_attempt" || a["userId"] != tk.User.ID {
		t.Fatalf("webhook alert %v", a)
	}
}

// Fifty failed logins against one account from one address, most of them refused by the lockout,
// raise one alert per IP and one per account, each once.
func TestAThresholdCrossingIsAlertedOnce(t *testing.T) {
	ingest := alerttest.NewSentry(t)
	rx := alerttest.NewWebhook(t, 0)
	hook, _ := rx.URL()
	st := newStack(t, stackConfig{dsn: ingest.DSN(), webhookURL: hook, rules: ratelimit.Rules{Lockout: config.Default().Rules.Lockout}})
	tk := st.signup(t, "ann@example.com", "correct horse battery")
	statuses := map[int]int{}
	for range 60 {
		status, _ := st.call(t, "POST", "/api/auth/login", map[string]string{"email": "ann@example.com", "password": "wrong password"},
			"X-Forwarded-For", "198.51.100.23")
		statuses[status]++
	}
	if statuses[401] != config.Default().Rules.Lockout.Burst || statuses[429] != 60-statuses[401] {
		t.Fatalf("statuses %v: want the lockout to refuse most", statuses)
	}
	// The monitor adds up its counts on its clock's ticks: move the clock a tick at a time until
	// both alerts are delivered (a tick may come before the monitor has taken every event).
	if err := st.Recorder.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]alerttest.Delivery{}
	for deadline := time.Now().Add(wait); len(got) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d threshold alerts delivered within %s, want 2", len(got), wait)
		}
		st.Clock.Advance(countEvery)
		if d, ok := rx.Poll(50 * time.Millisecond); ok {
			got[d.Alert()["type"].(string)] = d
		}
	}
	if a := got[alert.FailedLoginsPerIP].Alert(); a["ip"] != "198.51.100.23" || alerttest.Number(a, "count") < 50 {
		t.Errorf("per-IP alert %v", a)
	}
	if a := got[alert.FailedLoginsPerAccount].Alert(); a["userId"] != tk.User.ID || alerttest.Number(a, "count") < 50 {
		t.Errorf("per-account alert %v", a)
	}
	ev := ingest.WaitFor(t, wait, func(e alerttest.Event) bool { return e.Tags["alert"] == alert.KindThreshold })
	if ev.Level != "warning" || (ev.Fingerprint[1] != alert.FailedLoginsPerIP && ev.Fingerprint[1] != alert.FailedLoginsPerAccount) {
		t.Fatalf("threshold event %s", ev.Raw)
	}
	// Sixty more in the same window raise nothing new. Shutting down counts every event once more
	// (the recorder drains into the monitor, which counts at the end of its subscription) and
	// delivers what the webhook holds.
	for range 60 {
		st.call(t, "POST", "/api/auth/login", map[string]string{"email": "ann@example.com", "password": "wrong password"}, "X-Forwarded-For", "198.51.100.23")
	}
	if err := st.app.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if n := rx.Attempts(); n != 2 {
		t.Fatalf("%d webhook alerts, want the 2 of the first crossing only", n)
	}
}

// With Sentry unreachable (connections accepted, never answered) requests that fail take no longer
// than with Sentry off: nothing on the request path waits for the network.
func TestRequestsAreUnaffectedWhileSentryIsUnreachable(t *testing.T) {
	latencies := func(st *stack) []time.Duration {
		var out []time.Duration
		for i := range 150 {
			// Distinct errors, so that none is spared by the per-minute dedupe.
			email := "fail-" + strings.Repeat("q", i%40) + string(rune('g'+i%20)) + "@example.com"
			start := time.Now()
			if status, _ := st.call(t, "POST", "/api/auth/login", map[string]string{"email": email, "password": "x"}); status != 500 {
				t.Fatalf("status %d", status)
			}
			out = append(out, time.Since(start))
		}
		slices.Sort(out)
		return out
	}
	off := latencies(newStack(t, stackConfig{}))
	down := newStack(t, stackConfig{dsn: alerttest.Blackhole(t)})
	blackholed := latencies(down)
	median := func(d []time.Duration) time.Duration { return d[len(d)/2] }
	t.Logf("median %s with Sentry off, %s with Sentry unreachable; slowest %s and %s", median(off), median(blackholed), off[len(off)-1], blackholed[len(blackholed)-1])
	if median(blackholed) > median(off)+10*time.Millisecond {
		t.Errorf("median latency %s with Sentry unreachable, %s with it off", median(blackholed), median(off))
	}
	if slowest := blackholed[len(blackholed)-1]; slowest > 500*time.Millisecond {
		t.Errorf("a request took %s with Sentry unreachable: something waited for it", slowest)
	}
	// Shutdown gives up on the unsent reports at its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	down.Sentry.Close(ctx)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("closing took %s past its deadline", took)
	}
}

// encodings are the forms a secret takes in JSON and URLs, so that a leak is found whichever way it
// was written.
func encodings(secret string) []string {
	j, _ := json.Marshal(secret)
	forms := []string{secret, strings.Trim(string(j), `"`), url.QueryEscape(secret), url.PathEscape(secret)}
	var jNoHTML bytes.Buffer
	enc := json.NewEncoder(&jNoHTML)
	enc.SetEscapeHTML(false)
	enc.Encode(secret)
	return append(forms, strings.Trim(strings.TrimSpace(jNoHTML.String()), `"`))
}

// Every secret the test uses, wherever it is put (headers, query strings, error messages, panic
// values, log attributes that become breadcrumbs, event metadata), is absent from every envelope
// Sentry received and every body the webhook received.
func TestNoSecretLeavesTheProcess(t *testing.T) {
	const (
		userPassword = "Tr0ub4dor&3-horse<battery>"
		dbPassword   = "pg-Secret-77"
		smtpPassword = "smtp-Pa55word!"
		jwtSecret    = "hs256-shared-secret-at-least-32-bytes-long!!"
		nonce        = "n0nce-0f-the-request-7f3a"
	)
	ingest := alerttest.NewSentry(t)
	rx := alerttest.NewWebhook(t, 0)
	hook, hookSecret := rx.URL()
	leak := " while connecting to postgres://fluxauth:" + dbPassword + "@db.internal:5432/auth with password=" + userPassword
	st := newStack(t, stackConfig{dsn: ingest.DSN(), webhookURL: hook, jwtSecret: jwtSecret, leak: leak})

	tk := st.signup(t, "ann@example.com", userPassword)
	status, body := st.call(t, "POST", "/api/auth/login", map[string]string{"email": "ann@example.com", "password": userPassword, "deviceName": "phone"})
	if status != 200 {
		t.Fatalf("login: %d %s", status, body)
	}
	var login struct {
		tokens
		DeviceToken string `json:"deviceToken"`
	}
	json.Unmarshal(body, &login)
	secrets := []string{userPassword, dbPassword, smtpPassword, jwtSecret, nonce, hookSecret,
		tk.AccessToken, tk.RefreshToken, login.AccessToken, login.RefreshToken, idToken}
	if login.DeviceToken != "" {
		secrets = append(secrets, login.DeviceToken)
	}
	creds := []string{"Authorization", "Bearer " + tk.AccessToken, "Cookie", "fluxauth_refresh=" + tk.RefreshToken,
		"X-Refresh-Token", login.RefreshToken, "X-Device-Token", login.DeviceToken}
	q := "?refreshToken=" + url.QueryEscape(tk.RefreshToken) + "&password=" + url.QueryEscape(userPassword) + "&nonce=" + nonce

	// Failures whose requests and errors carry the secrets.
	st.call(t, "POST", "/api/auth/login"+q, map[string]string{"email": "leak@example.com", "password": userPassword}, creds...)
	st.call(t, "POST", "/api/auth/login"+q, map[string]string{"email": "panic-leak@example.com", "password": userPassword}, creds...)
	st.call(t, "POST", "/api/auth/google"+q, map[string]string{"idToken": idToken, "nonce": nonce}, creds...)
	// Log lines outside requests: a warning (a breadcrumb of the next report), then errors.
	st.Logger.Warn("smtp: authentication failed", "smtp_password", smtpPassword, "dsn", "smtp://mailer:"+smtpPassword+"@mail.internal:587")
	st.Logger.Error("signing keys: reload failed", "err", errors.New("parse key file: HS256 secret "+jwtSecret+" too weak"))
	st.Logger.Error("device check failed", "device_token", login.DeviceToken, "note", "refresh "+login.RefreshToken+" id_token="+idToken,
		"request", map[string]any{"headers": map[string]string{"Authorization": "Bearer " + login.AccessToken}, "nonce": nonce})
	// A critical event whose metadata holds secrets it should never have held.
	if err := st.Recorder.Record(context.Background(), &fluxauth.SecurityEvent{ID: "0195a4b2-7c3d-7e8f-9a0b-1c2d3e4f5a6b",
		Type: fluxauth.EventSessionHijackAttempt, Severity: fluxauth.SeverityCritical, UserID: tk.User.ID, IPAddress: "203.0.113.9",
		Metadata:  map[string]any{"reason": "refresh_token_reused", "refreshToken": tk.RefreshToken, "detail": "Bearer " + tk.AccessToken},
		CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	rx.Next(t, wait) // the critical event's alert
	ingest.WaitFor(t, wait, func(e alerttest.Event) bool { return e.Tags["alert"] != "" })
	if !st.Sentry.Flush(context.Background()) {
		t.Fatal("Sentry events left unsent")
	}
	st.Webhook.Flush(context.Background())

	events := ingest.Events()
	messages := map[string]bool{}
	for _, ev := range events {
		messages[ev.Message] = true
	}
	for _, want := range []string{"request failed", "panic in handler", "signing keys: reload failed", "device check failed"} {
		if !messages[want] {
			t.Errorf("no %q event reached Sentry (got %v): the grep below would prove nothing about it", want, messages)
		}
	}
	var sent [][]byte
	sent = append(sent, ingest.Envelopes()...)
	sent = append(sent, rx.Bodies()...)
	filtered := 0
	for _, b := range sent {
		filtered += bytes.Count(b, []byte(alert.Filtered))
		for _, secret := range secrets {
			for _, form := range encodings(secret) {
				if bytes.Contains(b, []byte(form)) {
					t.Errorf("secret %q (as %q) left the process in:\n%s", secret, form, b)
				}
			}
		}
	}
	if filtered == 0 {
		t.Fatal("nothing was filtered: the secrets never reached the reports, so this test shows nothing")
	}
	if !bytes.Contains(bytes.Join(sent, nil), []byte("db.internal:5432")) {
		t.Error("the error's harmless context was scrubbed too")
	}
}
