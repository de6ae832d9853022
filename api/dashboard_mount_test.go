package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth/dashboard"
)

// The dashboard is served at /admin/ through every middleware of the API without losing its own
// headers, and /admin leads there.
func TestDashboardIsMountedAtAdmin(t *testing.T) {
	e := newEnv(t, withCORSOrigins("https://app.example.com"))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(e.URL + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/admin/" {
		t.Errorf("GET /admin: %d Location %q, want 301 to /admin/", res.StatusCode, res.Header.Get("Location"))
	}

	for path, ct := range map[string]string{"/admin/": "text/html; charset=utf-8", "/admin/js/app.js": "text/javascript; charset=utf-8"} {
		res := e.do(t, "GET", path, nil, "Origin", "https://app.example.com")
		if res.Status != http.StatusOK || res.Header.Get("Content-Type") != ct {
			t.Errorf("GET %s: %d %q, want 200 %q", path, res.Status, res.Header.Get("Content-Type"), ct)
		}
		if res.Header.Get("Content-Security-Policy") != dashboard.ContentSecurityPolicy || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s lost the dashboard's headers: %v", path, res.Header)
		}
	}
	if res := e.do(t, "GET", "/admin/", nil); res.Header.Get("Cache-Control") != "no-store" || !strings.Contains(string(res.Body), `src="js/app.js"`) {
		t.Errorf("GET /admin/: Cache-Control %q body %.80q", res.Header.Get("Cache-Control"), res.Body)
	}
	if res := e.do(t, "POST", "/admin/", nil); res.Status != http.StatusMethodNotAllowed || res.errorCode(t) != "method_not_allowed" {
		t.Errorf("POST /admin/: %d %s, want 405 method_not_allowed", res.Status, res.Body)
	}
	if res := e.do(t, "GET", "/admin/no-such.js", nil); res.Status != http.StatusNotFound {
		t.Errorf("GET /admin/no-such.js: %d, want 404", res.Status)
	}
}
