package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/alert"
	"github.com/fluxstudio/fluxauth/alert/alerttest"
	"github.com/fluxstudio/fluxauth/internal/testenv"
)

// serve wires Sentry and the webhook as configured: a reused refresh token and a burst of failed
// logins reach both, labelled with "fluxauth version"'s release, the host and the default
// environment; the subscription's drops are on /metrics; shutdown delivers and exits.
func TestServeSendsAlertsToSentryAndTheWebhook(t *testing.T) {
	ingest := alerttest.NewSentry(t)
	rx := alerttest.NewWebhook(t, 0)
	hook, _ := rx.URL()
	internal := testenv.FreeAddr(t)
	cmd, url, logs := startServe(t, t.TempDir(), "FLUXAUTH_SENTRY_DSN="+ingest.DSN(), "FLUXAUTH_ALERT_WEBHOOK_URL="+hook,
		"FLUXAUTH_REFRESH_GRACE=0s", "FLUXAUTH_ALERT_FAILED_LOGINS=3/1m", "FLUXAUTH_INTERNAL_ADDR="+internal)
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		res, err := http.Post(url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	status, signup := post("/api/auth/signup", `{"email":"ann@example.com","password":"correct horse battery","name":"Ann"}`)
	if status != 201 {
		t.Fatalf("signup: %d %v\n%s", status, signup, logs)
	}
	first := signup["refreshToken"].(string)
	next := first
	for range 2 {
		status, body := post("/api/auth/refresh", `{"refreshToken":"`+next+`"}`)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, body)
		}
		next = body["refreshToken"].(string)
	}
	if status, _ := post("/api/auth/refresh", `{"refreshToken":"`+first+`"}`); status != 401 {
		t.Fatalf("reuse: %d", status)
	}
	ev := ingest.WaitFor(t, wait, func(e alerttest.Event) bool { return e.Tags["event_type"] == "session_hijack_attempt" })
	out, err := runCLI(t, t.TempDir(), nil, "version")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if release := strings.TrimSpace(strings.TrimPrefix(out, "fluxauth")); ev.Release != release || ev.ServerName != host || ev.Environment != "production" {
		t.Fatalf("release %q server %q environment %q, want %q, %q, production", ev.Release, ev.ServerName, ev.Environment, release, host)
	}
	if d := rx.Next(t, wait); d.Alert()["type"] != "session_hijack_attempt" || d.Alert()["release"] != ev.Release {
		t.Fatalf("webhook alert %v", d.Alert())
	}

	for range 3 {
		post("/api/auth/login", `{"email":"ann@example.com","password":"wrong password"}`)
	}
	if d := rx.Next(t, wait); d.Alert()["type"] != alert.FailedLoginsPerIP && d.Alert()["type"] != alert.FailedLoginsPerAccount {
		t.Fatalf("webhook alert %v, want a failed-login threshold", d.Alert())
	}

	res, err := http.Get("http://" + internal + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`fluxauth_audit_subscriber_dropped_total{subscriber="alerts"} 0`, `fluxauth_audit_subscriber_dropped_total{subscriber="metrics"} 0`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v:\n%s", err, logs)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("shutdown took %s", took)
	}
}

// wait bounds every wait for an alert to arrive on loopback.
const wait = 5 * time.Second
