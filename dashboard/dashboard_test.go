package dashboard_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth/dashboard"
)

func get(t *testing.T, h http.Handler, method, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every answer carries the policy that lets the page run only its own files, and the headers that
// keep it from being sniffed or framed.
func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	h := dashboard.Handler()
	for _, path := range []string{"/", "/app.css", "/js/app.js", "/vendor/uPlot.esm.js", "/no-such-file.js"} {
		res := get(t, h, "GET", path)
		want := map[string]string{
			"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
				"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
			"X-Content-Type-Options": "nosniff",
			"X-Frame-Options":        "DENY",
			"Referrer-Policy":        "no-referrer",
		}
		for name, v := range want {
			if got := res.Header.Get(name); got != v {
				t.Errorf("%s %s: %q, want %q", path, name, got, v)
			}
		}
	}
}

// Each kind of file is served with the type a browser needs to use it: a module served as anything
// but JavaScript would not run under nosniff.
func TestFilesAreServedWithTheirContentTypes(t *testing.T) {
	h := dashboard.Handler()
	cases := map[string]string{
		"/":                     "text/html; charset=utf-8",
		"/index.html":           "text/html; charset=utf-8",
		"/app.css":              "text/css; charset=utf-8",
		"/vendor/uPlot.min.css": "text/css; charset=utf-8",
		"/js/app.js":            "text/javascript; charset=utf-8",
		"/vendor/uPlot.esm.js":  "text/javascript; charset=utf-8",
		"/favicon.svg":          "image/svg+xml",
	}
	for path, ct := range cases {
		res := get(t, h, "GET", path)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != ct {
			t.Errorf("GET %s: %d %q, want 200 %q", path, res.StatusCode, res.Header.Get("Content-Type"), ct)
		}
		if b := body(t, res); b == "" {
			t.Errorf("GET %s: empty body", path)
		}
	}
	for _, path := range []string{"/vendor/uPlot.LICENSE", "/js/", "/nope.js", "/../dashboard.go", "/js/../../dashboard.go"} {
		if res := get(t, h, "GET", path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
	if res := get(t, h, "POST", "/"); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", res.StatusCode)
	}
}

// The page is never kept (a cached copy could name modules a newer binary no longer has); the
// modules may be kept but are revalidated, and an unchanged one answers 304.
func TestCaching(t *testing.T) {
	h := dashboard.Handler()
	if cc := get(t, h, "GET", "/").Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("index.html Cache-Control %q, want no-store", cc)
	}
	res := get(t, h, "GET", "/js/app.js")
	etag := res.Header.Get("ETag")
	if res.Header.Get("Cache-Control") != "no-cache" || etag == "" {
		t.Fatalf("module: Cache-Control %q ETag %q, want no-cache and an ETag", res.Header.Get("Cache-Control"), etag)
	}
	if res := get(t, h, "GET", "/js/app.js", "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with the ETag: %d, want 304", res.StatusCode)
	}
	if other := get(t, h, "GET", "/app.css").Header.Get("ETag"); other == etag {
		t.Errorf("two files share the ETag %s", etag)
	}
}

var (
	inlineScript = regexp.MustCompile(`(?is)<script\b[^>]*>\s*[^<\s]`)
	scriptTag    = regexp.MustCompile(`(?is)<script\b[^>]*>`)
	inlineStyle  = regexp.MustCompile(`(?is)<style\b|\sstyle\s*=`)
	inlineEvent  = regexp.MustCompile(`(?is)<[^>]+\son[a-z]+\s*=`)
	jsURL        = regexp.MustCompile(`(?i)javascript:`)
	lineComment  = regexp.MustCompile(`(?m)(^|\s)//.*$`)
)

// The CSP forbids inline code; the page must not need any. Checked on every HTML file and, for
// style attributes and HTML parsing, on the modules too (a module that wrote style="" or assigned
// innerHTML would be refused, or open the page to injected event fields).
func TestNoInlineScriptOrStyle(t *testing.T) {
	fsys := os.DirFS("static") // the tree go:embed takes
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		src := string(b)
		switch {
		case strings.HasSuffix(name, ".html"):
			if m := inlineScript.FindString(src); m != "" {
				t.Errorf("%s: inline script %q", name, m)
			}
			for _, tag := range scriptTag.FindAllString(src, -1) {
				if !strings.Contains(tag, `src="`) {
					t.Errorf("%s: script without src: %s", name, tag)
				}
			}
			for _, re := range []*regexp.Regexp{inlineStyle, inlineEvent, jsURL} {
				if m := re.FindString(src); m != "" {
					t.Errorf("%s: %q is refused by the page's CSP", name, m)
				}
			}
		case strings.HasPrefix(name, "js/"):
			src = lineComment.ReplaceAllString(src, "") // comments may name what the code avoids
			// The device token, alone, is kept in localStorage (it is no credential without the
			// password): the key it is kept under is the only use allowed.
			src = strings.NewReplacer("localStorage.getItem(DEVICE_TOKENS)", "", "localStorage.setItem(DEVICE_TOKENS,", "").Replace(src)
			for _, banned := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "setAttribute('style'", "eval(", "new Function",
				"localStorage", "sessionStorage", "document.cookie"} {
				if strings.Contains(src, banned) {
					t.Errorf("%s uses %s", name, banned)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
