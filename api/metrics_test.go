package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// withInternalListener gives the server its internal listener (metrics and pprof), as
// FLUXAUTH_INTERNAL_ADDR does.
var withInternalListener = withConfig(func(c *config.Config) { c.InternalAddr = "127.0.0.1:0" })

func getMetrics(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, res)
}

// The service counts its requests by route pattern, never by raw path, and its security events by
// type and severity, as the recorder commits them.
func TestMetricsCountRequestsByRoutePattern(t *testing.T) {
	e := newEnv(t, withInternalListener)
	for _, p := range []string{"/healthz", "/healthz", "/no/such/path/123"} {
		res, err := http.Get(e.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	e.failLogin(t, "nobody@example.com", "198.51.100.1")
	const event = `fluxauth_security_events_total{severity="warning",type="failed_login"} 1`
	waitFor(t, "the failed login to be counted", func() bool { return strings.Contains(getMetrics(t, e.App.InternalURL()), event) })
	body := getMetrics(t, e.App.InternalURL())
	for _, want := range []string{
		`fluxauth_http_requests_total{route="GET /healthz",status="200"} 2`,
		`fluxauth_http_requests_total{route="unmatched",status="404"} 1`,
		`fluxauth_http_requests_total{route="POST /api/auth/login",status="401"} 1`,
		event,
		`fluxauth_audit_events_set_aside_total 0`,
		`fluxauth_audit_subscriber_dropped_total{subscriber="alerts"} 0`,
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

// The recorder's set-aside events and the subscriptions' drops are exported as the counts they
// report, and each event counted once.
func TestMetricsExportTheAuditCounts(t *testing.T) {
	m := api.NewMetrics()
	m.CountEvent(fluxauth.SecurityEvent{Type: "failed_login", Severity: "warning"})
	m.ExportSetAside(func() uint64 { return 3 })
	m.ExportSubscriberDrops("alerts", func() uint64 { return 7 })
	m.ExportSubscriberDrops("metrics", func() uint64 { return 0 })
	internal := httptest.NewServer(api.InternalHandler(m))
	defer internal.Close()
	body := getMetrics(t, internal.URL)
	for _, want := range []string{
		`fluxauth_security_events_total{severity="warning",type="failed_login"} 1`,
		`fluxauth_audit_events_set_aside_total 3`,
		`fluxauth_audit_subscriber_dropped_total{subscriber="alerts"} 7`,
		`fluxauth_audit_subscriber_dropped_total{subscriber="metrics"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// The security counters would show an attacker how they are watched: /metrics and pprof are served
// on the internal listener only.
func TestMetricsAndProfilesAreOnTheInternalListenerOnly(t *testing.T) {
	e := newEnv(t, withInternalListener)
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		res, err := http.Get(e.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, res); res.StatusCode != http.StatusNotFound || strings.Contains(body, "go_goroutines") {
			t.Errorf("public %s: %d", path, res.StatusCode)
		}
		res, err = http.Get(e.App.InternalURL() + path)
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
	e := newEnv(t, withInternalListener, withStore(pingStore{sqlitetest.MustOpenDB(t), func(context.Context) error {
		panic("the database client exploded")
	}}))
	res, err := http.Get(e.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, res); res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("panicking /readyz: %d, want 500", res.StatusCode)
	}
	if body, want := getMetrics(t, e.App.InternalURL()), `fluxauth_http_requests_total{route="GET /readyz",status="500"} 1`; !strings.Contains(body, want) {
		t.Errorf("metrics lack %s", want)
	}
}
