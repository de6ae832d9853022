package alert_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/alert"
	"github.com/fluxstudio/fluxauth/alert/alerttest"
	"github.com/fluxstudio/fluxauth/internal/testenv"
)

func newWebhook(tb testing.TB, url string, logs *syncWriter, cfg alert.WebhookConfig) *alert.Webhook {
	tb.Helper()
	cfg.URL = url
	cfg.Environment, cfg.Instance, cfg.Release = "staging", "auth-7", "1.2.3"
	if cfg.Backoff == 0 {
		cfg.Backoff = 10 * time.Millisecond
	}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	w, err := alert.NewWebhook(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- w.Run(context.Background()) }()
	tb.Cleanup(func() {
		w.Close(context.Background())
		<-ran // an error only says that Close came first and drained the queue itself

	})
	return w
}

func hijack() alert.Alert {
	return alert.Alert{Kind: alert.KindSecurityEvent, Type: "session_hijack_attempt", Severity: "critical",
		At: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), UserID: "u-1", IP: "203.0.113.9", EventID: "e-1",
		Metadata: map[string]any{"reason": "refresh_token_reused", "refreshToken": refreshToken, "note": "Bearer " + accessToken}}
}

// The body is Slack's {"text": …} with the structured alert beside it, scrubbed like Sentry events.
func TestTheWebhookPostsSlackTextAndTheStructuredAlert(t *testing.T) {
	rx := alerttest.NewWebhook(t, 0)
	url, _ := rx.URL()
	w := newWebhook(t, url, nil, alert.WebhookConfig{})
	w.Send(hijack())
	d := rx.Next(t, wait)
	text, _ := d.Payload["text"].(string)
	for _, want := range []string{"critical", "session_hijack_attempt", "u-1", "203.0.113.9", "refresh_token_reused"} {
		if !strings.Contains(text, want) {
			t.Errorf("text %q lacks %q", text, want)
		}
	}
	a := d.Alert()
	for k, want := range map[string]string{"kind": "security_event", "type": "session_hijack_attempt", "severity": "critical",
		"userId": "u-1", "ip": "203.0.113.9", "eventId": "e-1", "environment": "staging", "instance": "auth-7", "release": "1.2.3"} {
		if a[k] != want {
			t.Errorf("alert.%s = %v, want %q", k, a[k], want)
		}
	}
	if meta, _ := a["metadata"].(map[string]any); meta["reason"] != "refresh_token_reused" {
		t.Errorf("metadata %v", a["metadata"])
	}
	for _, secret := range []string{refreshToken, accessToken} {
		if bytes.Contains(d.Body, []byte(secret)) {
			t.Errorf("%q was posted", secret)
		}
	}
}

// A receiver that fails and then recovers gets the alert once it answers; the waits between
// attempts grow.
func TestTheWebhookRetriesUntilTheReceiverRecovers(t *testing.T) {
	rx := alerttest.NewWebhook(t, 3)
	url, _ := rx.URL()
	w := newWebhook(t, url, nil, alert.WebhookConfig{Attempts: 5})
	start := time.Now()
	w.Send(hijack())
	d := rx.Next(t, wait)
	if d.Attempt != 4 || rx.Attempts() != 4 {
		t.Fatalf("delivered on attempt %d of %d requests, want the 4th after 3 failures", d.Attempt, rx.Attempts())
	}
	if took := time.Since(start); took < 70*time.Millisecond {
		t.Fatalf("three retries took %s, want at least 10+20+40ms of backoff", took)
	}
}

// A receiver that never recovers gets Attempts tries, then the failure is logged at error level
// (which reports it to Sentry) without the URL, whose path holds the webhook's secret.
func TestAnUndeliverableAlertIsLoggedWithoutTheURL(t *testing.T) {
	rx := alerttest.NewWebhook(t, 1000)
	url, secret := rx.URL()
	logs := &syncWriter{}
	w := newWebhook(t, url, logs, alert.WebhookConfig{Attempts: 3})
	w.Send(hijack())
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rx.Attempts(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	out := logs.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "alert not delivered") {
		t.Fatalf("no error logged: %s", out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, "/services/") {
		t.Fatalf("the webhook URL was logged: %s", out)
	}
}

// The queue is bounded: alerts beyond it are dropped, never waited for, and the next delivery says
// how many.
func TestAFullWebhookQueueDropsAndCountsWithoutBlocking(t *testing.T) {
	rx := alerttest.NewWebhook(t, 1) // the first attempt fails: the worker is busy retrying
	url, _ := rx.URL()
	w := newWebhook(t, url, nil, alert.WebhookConfig{QueueSize: 2, Backoff: 200 * time.Millisecond})
	w.Send(hijack())
	rx.AwaitAttempt(t, wait) // the first alert is in flight, waiting to be retried
	start := time.Now()
	for range 9 {
		w.Send(hijack())
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Fatalf("sending to a full queue took %s", took)
	}
	dropped := 0
	for range 3 { // the one being retried, then the two queued
		dropped += alerttest.Number(rx.Next(t, wait).Alert(), "droppedAlerts")
	}
	if dropped != 7 {
		t.Fatalf("dropped alerts reported: %d, want 7 (10 sent, 1 in flight, 2 queued)", dropped)
	}
}

// Shutdown waits for queued alerts only until its deadline.
func TestWebhookCloseGivesUpAtItsDeadline(t *testing.T) {
	rx := alerttest.NewWebhook(t, 1000)
	url, _ := rx.URL()
	w := newWebhook(t, url, nil, alert.WebhookConfig{Attempts: 100, Backoff: time.Second})
	w.Send(hijack())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := w.Close(ctx); err == nil {
		t.Fatal("Close reported success with an alert undelivered")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close took %s", took)
	}
}

func TestWebhookURLMustBeHTTP(t *testing.T) {
	for _, u := range []string{"", "ftp://x/y", "hooks.slack.com/services/x", "http://"} {
		if _, err := alert.NewWebhook(alert.WebhookConfig{URL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

// A webhook that never ran (an App discarded before Run) still delivers, at Close, what was sent.
func TestWebhookCloseWithoutRunDeliversTheQueue(t *testing.T) {
	rx := alerttest.NewWebhook(t, 0)
	url, _ := rx.URL()
	w, err := alert.NewWebhook(alert.WebhookConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	w.Send(hijack())
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rx.Attempts(); n != 1 {
		t.Fatalf("%d attempts, want the queued alert delivered by Close", n)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("Run after Close succeeded")
	}
}

func TestWebhookRunTwiceFails(t *testing.T) {
	rx := alerttest.NewWebhook(t, 0)
	url, _ := rx.URL()
	w := newWebhook(t, url, nil, alert.WebhookConfig{})
	w.Send(hijack())
	rx.Next(t, wait) // the first Run delivers
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("a second Run succeeded")
	}
}

// The wait before a retry is on the webhook's clock: the retry goes out once the backoff has
// passed, not before.
func TestTheWebhookRetriesAfterTheBackoffOnItsClock(t *testing.T) {
	rx := alerttest.NewWebhook(t, 1)
	url, _ := rx.URL()
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	w := newWebhook(t, url, nil, alert.WebhookConfig{Attempts: 3, Backoff: time.Second, Clock: clock})
	w.Send(hijack())
	if at := clock.WaitTimers(t, 1); !at[0].Equal(clock.Now().Add(time.Second)) { // the first attempt failed
		t.Fatalf("retry armed for %v, want the backoff of 1s from %v", at[0], clock.Now())
	}
	clock.Advance(time.Second - time.Millisecond)
	clock.WaitTimers(t, 1) // still armed: nothing else can make the second attempt
	if n := rx.Attempts(); n != 1 {
		t.Fatalf("%d attempts before the backoff passed, want 1", n)
	}
	clock.Advance(time.Millisecond)
	if d := rx.Next(t, wait); d.Attempt != 2 {
		t.Fatalf("delivered on attempt %d, want the retry (2)", d.Attempt)
	}
}
