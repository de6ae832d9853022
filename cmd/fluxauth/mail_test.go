package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/mail/mailtest"
)

func postJSON(tb testing.TB, url string, body any) *http.Response {
	tb.Helper()
	b, _ := json.Marshal(body)
	res, err := http.Post(url, "application/json", strings.NewReader(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	res.Body.Close()
	return res
}

// serve sends the verification mail of a signup through the configured SMTP server, says at start
// how mail goes out without the SMTP password, and stops its sender on SIGTERM.
func TestServeSendsMailThroughSMTPWithoutLoggingItsPassword(t *testing.T) {
	smtp := mailtest.NewServer(t, mailtest.RequireAuth("fluxauth", "hunter2-smtp"))
	cmd, url, logs := startServe(t, t.TempDir(), "FLUXAUTH_SMTP_URL="+smtp.URL(), "FLUXAUTH_MAIL_FROM=FluxStudio <no-reply@fluxstudio.test>",
		"FLUXAUTH_RESET_URL=https://app.example/reset?token={token}", "FLUXAUTH_VERIFY_URL=https://app.example/verify?token={token}")
	if res := postJSON(t, url+"/api/auth/signup", map[string]string{"email": "serve-mail@example.com", "password": "correct horse battery", "name": "S"}); res.StatusCode != 201 {
		t.Fatalf("signup %d", res.StatusCode)
	}
	m := smtp.Wait(t, 1, 10*time.Second)[0]
	raw := mailtest.LinkToken(t, m, "https://app.example/verify")
	if res := postJSON(t, url+"/api/auth/email/verify", map[string]string{"token": raw, "email": "serve-mail@example.com", "password": "correct horse battery"}); res.StatusCode != 200 {
		t.Fatalf("verify with the mailed token: %d", res.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v:\n%s", err, logs)
	}
	out := logs.String()
	if !strings.Contains(out, "mail is sent through SMTP") || strings.Contains(out, "hunter2-smtp") || strings.Contains(out, raw) {
		t.Fatalf("the start-up line is missing, or the SMTP password or a link token reached the log:\n%s", out)
	}
}

func TestServeSaysMailIsDisabledAndAnswersMailUnavailable(t *testing.T) {
	_, url, logs := startServe(t, t.TempDir())
	if res := postJSON(t, url+"/api/auth/password/forgot", map[string]string{"email": "a@example.com"}); res.StatusCode != 503 {
		t.Fatalf("forgot without mail: %d, want 503", res.StatusCode)
	}
	if !strings.Contains(logs.String(), "mail is disabled") {
		t.Fatalf("no word at start that mail is disabled:\n%s", logs)
	}
}

// FLUXAUTH_SMTP_URL=log: is for local development: serve warns, and the mail, link and all, is in
// the log (the one place a link token may be).
func TestServeWithLogMailWarnsAndWritesTheMailToTheLog(t *testing.T) {
	_, url, logs := startServe(t, t.TempDir(), "FLUXAUTH_SMTP_URL=log:")
	if !strings.Contains(logs.String(), "FLUXAUTH_SMTP_URL=log:") {
		t.Fatalf("no warning about log: at start:\n%s", logs)
	}
	if res := postJSON(t, url+"/api/auth/signup", map[string]string{"email": "log-mail@example.com", "password": "correct horse battery", "name": "L"}); res.StatusCode != 201 {
		t.Fatalf("signup %d", res.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "http://localhost:3000/verify-email?token=") {
		if time.Now().After(deadline) {
			t.Fatalf("the verification mail is not in the log:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
