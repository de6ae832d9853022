package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

func TestMetricsCountRequestsByRoutePattern(t *testing.T) {
	m := api.NewMetrics()
	srv := &api.Server{Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil)), DB: sqlitetest.MustOpenDB(t), Metrics: m}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, p := range []string{"/healthz", "/healthz", "/no/such/path/123"} {
		res, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	m.CountEvent(fluxauth.SecurityEvent{Type: "failed_login", Severity: "warning"})
	m.ExportSetAside(func() uint64 { return 3 })
	m.ExportSubscriberDrops("alerts", func() uint64 { return 7 })
	m.ExportSubscriberDrops("metrics", func() uint64 { return 0 })
	internal := httptest.NewServer(api.InternalHandler(m))
	defer internal.Close()
	res, err := http.Get(internal.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res)
	for _, want := range []string{
		`fluxauth_http_requests_total{route="GET /healthz",status="200"} 2`,
		`fluxauth_http_requests_total{route="unmatched",status="404"} 1`,
		`fluxauth_security_events_total{severity="warning",type="failed_login"} 1`,
		`fluxauth_audit_events_set_aside_total 3`,
		`fluxauth_audit_subscriber_dropped_total{subscriber="alerts"} 7`,
		`fluxauth_audit_subscriber_dropped_total{subscriber="metrics"} 0`,
		`fluxauth_http_request_duration_seconds_bucket{route="GET /healthz"`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "/no/such/path") {
		t.Error("a raw path became a label")
	}
}

// The security counters would show an attacker how they are watched: /metrics and pprof are served
// on the internal listener only.
func TestMetricsAndProfilesAreOnTheInternalListenerOnly(t *testing.T) {
	m := api.NewMetrics()
	public := httptest.NewServer((&api.Server{Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil)), DB: sqlitetest.MustOpenDB(t), Metrics: m}).Handler())
	defer public.Close()
	internal := httptest.NewServer(api.InternalHandler(m))
	defer internal.Close()
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		res, err := http.Get(public.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, res); res.StatusCode != http.StatusNotFound || strings.Contains(body, "go_goroutines") {
			t.Errorf("public %s: %d", path, res.StatusCode)
		}
		res, err = http.Get(internal.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		if readAll(t, res); res.StatusCode != http.StatusOK {
			t.Errorf("internal %s: %d", path, res.StatusCode)
		}
	}
}

// A request whose handler panics is answered 500 by the recovery, and counted as that 500.
func TestMetricsCountAPanickingRequestAsThe500ItAnswers(t *testing.T) {
	m := api.NewMetrics()
	srv := &api.Server{Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil)), Metrics: m,
		DB: pingFunc(func(context.Context) error { panic("the database client exploded") })}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	res, err := http.Get(ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, res); res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("panicking /readyz: %d, want 500", res.StatusCode)
	}
	internal := httptest.NewServer(api.InternalHandler(m))
	defer internal.Close()
	res, err = http.Get(internal.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if body, want := readAll(t, res), `fluxauth_http_requests_total{route="GET /readyz",status="500"} 1`; !strings.Contains(body, want) {
		t.Errorf("metrics lack %s", want)
	}
}
