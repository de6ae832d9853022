package alert_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/alert"
	"github.com/fluxstudio/fluxauth/alert/alerttest"
	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/internal/testenv"
)

// wait bounds every wait for a delivery; deliveries on loopback take milliseconds.
const wait = 5 * time.Second

// newSentry returns a reporter sending to dsn, closed when tb ends.
func newSentry(tb testing.TB, dsn string, clock fluxauth.Clock, secrets ...string) *alert.Sentry {
	tb.Helper()
	s, err := alert.NewSentry(alert.SentryConfig{
		DSN: dsn, Environment: "staging", Release: "1.2.3", ServerName: "auth-7",
		Scrubber: alert.NewScrubber(secrets...), Clock: clock, Timeout: 2 * time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

// reportingLogger logs as serve does: request IDs added, error records reported to s.
func reportingLogger(s *alert.Sentry) *slog.Logger {
	return slog.New(api.NewLogHandler(s.Handler(slog.NewTextHandler(io.Discard, nil))))
}

func flush(tb testing.TB, s *alert.Sentry) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if !s.Flush(ctx) {
		tb.Fatal("events still queued after the flush deadline")
	}
}

func TestAnErrorLoggedInARequestIsReportedWithItsContext(t *testing.T) {
	ingest := alerttest.NewSentry(t)
	s := newSentry(t, ingest.DSN(), nil)
	logger := reportingLogger(s)
	ctx := fluxauth.WithRequestID(context.Background(), "req-42")
	logger.ErrorContext(ctx, "request failed", "method", "DELETE", "path", "/api/auth/sessions/0190c0de-0000-7000-8000-00000000beef",
		"route", "DELETE /api/auth/sessions/{id}", "status", 500, "code", "internal", "err", fmt.Errorf("revoke: %w", errors.New("disk full")))

	ev := ingest.Next(t, wait)
	if ev.Level != "error" || ev.Message != "request failed" || ev.Transaction != "DELETE /api/auth/sessions/{id}" {
		t.Fatalf("level %q message %q transaction %q", ev.Level, ev.Message, ev.Transaction)
	}
	for k, want := range map[string]string{"request_id": "req-42", "route": "DELETE /api/auth/sessions/{id}",
		"method": "DELETE", "status": "500", "code": "internal"} {
		if ev.Tags[k] != want {
			t.Errorf("tag %s = %q, want %q", k, ev.Tags[k], want)
		}
	}
	if ev.Release != "1.2.3" || ev.Environment != "staging" || ev.ServerName != "auth-7" {
		t.Errorf("release %q environment %q server %q", ev.Release, ev.Environment, ev.ServerName)
	}
	if len(ev.Exception) == 0 || ev.Exception[len(ev.Exception)-1].Value != "revoke: disk full" {
		t.Fatalf("exceptions %+v, want the error chain", ev.Exception)
	}
	if !ev.HasFrame("TestAnErrorLoggedInARequestIsReportedWithItsContext") {
		t.Errorf("the stack does not reach the code that logged: %s", ev.Raw)
	}
	if ev.HasFrame("(*logHandler).Handle") || strings.Contains(string(ev.Raw), `"module":"log/slog"`) {
		t.Errorf("the logging machinery is in the stack: %s", ev.Raw)
	}
	if strings.Contains(string(ev.Raw), "00000000beef") {
		t.Errorf("the raw path was sent: %s", ev.Raw)
	}
}

// Failures outside requests (cleanup, the audit recorder, key reloads) log at error level without a
// request: they are reported too; info and warnings are not, but warnings ride along as breadcrumbs.
func TestErrorsOutsideRequestsAreReportedAndWarningsBecomeBreadcrumbs(t *testing.T) {
	ingest := alerttest.NewSentry(t)
	s := newSentry(t, ingest.DSN(), nil)
	logger := reportingLogger(s).With("component", "cleanup")
	logger.Info("cleanup started")
	logger.Warn("ratelimit: redis unavailable", "err", "dial tcp: refused")
	logger.WithGroup("batch").Error("cleanup failed", "table", "refresh_tokens", "err", errors.New("deadlock"))

	ev := ingest.Next(t, wait)
	if ev.Message != "cleanup failed" || ev.Tags["request_id"] != "" {
		t.Fatalf("message %q request_id %q", ev.Message, ev.Tags["request_id"])
	}
	if ev.Details()["component"] != "cleanup" || ev.Details()["batch.table"] != "refresh_tokens" {
		t.Errorf("details %v: want the logger's and the record's attributes, groups dotted", ev.Details())
	}
	if len(ev.Breadcrumbs) != 1 || ev.Breadcrumbs[0].Message != "ratelimit: redis unavailable" {
		t.Errorf("breadcrumbs %+v, want the warning only", ev.Breadcrumbs)
	}
	flush(t, s)
	if n := len(ingest.Events()); n != 1 {
		t.Fatalf("%d events, want only the error", n)
	}
}

// A storm of one failure is one report a minute, the next one saying how often it repeated; another
// failure is reported on its own.
func TestTheSameErrorIsReportedOncePerMinute(t *testing.T) {
	ingest := alerttest.NewSentry(t)
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	s := newSentry(t, ingest.DSN(), clock)
	logger := reportingLogger(s)
	storm := func(n int) {
		for i := range n {
			// What differs between occurrences (a port, a duration) does not make another error.
			logger.Error("request failed", "route", "POST /api/auth/refresh", "code", "internal",
				"err", fmt.Errorf("dial 10.0.0.%d:5432: timeout after %dms", i%7, 20+i))
		}
	}
	storm(200)
	logger.Error("request failed", "route", "GET /api/auth/me", "code", "internal", "err", errors.New("dial: timeout"))
	flush(t, s)
	if n := len(ingest.Events()); n != 2 {
		t.Fatalf("%d events for a storm of one error and one other error, want 2", n)
	}
	clock.Advance(alert.DedupeWindow - time.Second)
	storm(10)
	flush(t, s)
	if n := len(ingest.Events()); n != 2 {
		t.Fatalf("%d events before the minute passed, want still 2", n)
	}
	clock.Advance(time.Second)
	storm(1)
	flush(t, s)
	evs := ingest.Events()
	if len(evs) != 3 {
		t.Fatalf("%d events after the minute, want 3", len(evs))
	}
	if got := evs[2].Details()["repeats_not_reported"]; got != float64(209) {
		t.Fatalf("repeats_not_reported = %v, want 209", got)
	}
}

// An alert is its own Sentry event, never deduplicated as errors are: level error for a security
// event, tagged, and grouped by type.
func TestAnAlertIsAnEventGroupedByType(t *testing.T) {
	ingest := alerttest.NewSentry(t)
	s := newSentry(t, ingest.DSN(), nil)
	a := alert.Alert{Kind: alert.KindSecurityEvent, Type: fluxauth.EventSessionHijackAttempt, Severity: "critical",
		At: time.Now(), UserID: "u-1", IP: "203.0.113.9", EventID: "e-1", HeldBack: 4,
		Metadata: map[string]any{"reason": "refresh_token_reused", "sessionId": "s-1"}}
	s.Send(a)
	s.Send(a)
	for range 2 {
		ev := ingest.Next(t, wait)
		if ev.Level != "error" || strings.Join(ev.Fingerprint, ",") != "fluxauth-alert,session_hijack_attempt" {
			t.Fatalf("level %q fingerprint %v", ev.Level, ev.Fingerprint)
		}
		for k, want := range map[string]string{"event_type": "session_hijack_attempt", "severity": "critical",
			"user_id": "u-1", "ip": "203.0.113.9", "alert": "security_event"} {
			if ev.Tags[k] != want {
				t.Errorf("tag %s = %q, want %q", k, ev.Tags[k], want)
			}
		}
		if ev.Details()["held_back"] != float64(4) || ev.Details()["event_id"] != "e-1" {
			t.Errorf("details %v", ev.Details())
		}
	}
	s.Send(alert.Alert{Kind: alert.KindThreshold, Type: alert.FailedLoginsPerIP, Severity: "warning", IP: "203.0.113.9", Count: 50, Threshold: "50/5m"})
	if ev := ingest.Next(t, wait); ev.Level != "warning" || ev.Fingerprint[1] != alert.FailedLoginsPerIP {
		t.Fatalf("threshold alert: level %q fingerprint %v", ev.Level, ev.Fingerprint)
	}
}

// With Sentry unreachable (an ingest that never answers), reporting costs the caller no more than
// with Sentry up: nothing waits on the network, the queue is bounded, and Close gives up at its
// deadline.
func TestAnUnreachableSentryBlocksNothing(t *testing.T) {
	s := newSentry(t, alerttest.Blackhole(t), nil)
	logger := reportingLogger(s)
	var slowest time.Duration
	for i := range 500 {
		start := time.Now()
		// Distinct errors, so that each one is reported rather than deduplicated.
		logger.Error("request failed", "route", "POST /api/auth/login", "err", errors.New("failure "+strings.Repeat("x", i%50)+string(rune('a'+i%26))))
		slowest = max(slowest, time.Since(start))
	}
	// The ingest never answers, so a call that waited on a delivery waited the whole delivery
	// timeout (newSentry's 2s); one under half of it did not, however busy the machine. (A bound of
	// 100ms measured the machine: a loaded CI core took 138ms over a GC pause.)
	if slowest >= time.Second {
		t.Fatalf("logging an error took %s with Sentry unreachable: it waited on the delivery", slowest)
	}
	t.Logf("slowest of 500 error logs with Sentry unreachable: %s", slowest)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Close(ctx)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close took %s past its 200ms deadline", took)
	}
	if err == nil {
		t.Fatal("Close reported everything sent to an ingest that never answered")
	}
}

func TestNoDSNIsAnErrorNotTheEnvironments(t *testing.T) {
	t.Setenv("SENTRY_DSN", "http://public@127.0.0.1:1/1")
	if _, err := alert.NewSentry(alert.SentryConfig{}); err == nil {
		t.Fatal("an empty DSN was accepted (SENTRY_DSN would have been used)")
	}
}

// syncWriter is a log destination safe for concurrent writes.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
