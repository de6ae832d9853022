// Package dashboard owns the security dashboard's page: its HTML, CSS, JavaScript modules and the
// vendored chart library, embedded in the binary so /admin/ works offline with no build step. The
// page signs in and reads everything through the JSON API (its endpoints live in api, like the
// others); this package only serves files, under a Content-Security-Policy that lets the page run
// nothing but those files.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy allows the page only its own files and the API of its own origin: no inline
// script or style (an injected event field can never run), no framing (no clickjacking of the
// Revoke buttons), no <base> or form target that could send a password elsewhere. img-src also
// allows data: URLs, which images the page draws itself may use.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// contentTypes names the type of every kind of file the page is made of. The table is the page's
// own rather than the mime package's, which reads the machine's mime.types and has been known to
// answer text/plain for .js (which the browser then refuses to run as a module); a file of any
// other kind is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the page, with index.html at "/" and every other file under its own path; mount
// it with the mount point stripped (http.StripPrefix("/admin", dashboard.Handler())). It answers
// GET and HEAD only.
func Handler() http.Handler {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	assets := map[string]asset{}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil // licence texts and the like ship in the binary but are not pages' files
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		assets["/"+name] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY") // frame-ancestors for browsers that predate it
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// Only the embedded files' exact names are looked up, so no path can reach anything else.
		name := r.URL.Path
		if name == "/" || name == "" {
			name = "/index.html"
		}
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", a.contentType)
		if name == "/index.html" {
			// The page is the one file a browser must never keep: a cached copy would outlive the
			// binary it came with and could name modules that binary no longer serves.
			h.Set("Cache-Control", "no-store")
		} else {
			// The modules' names carry no version, so a browser may keep them but must ask first
			// (the ETag answers 304 when the binary has not changed).
			h.Set("Cache-Control", "no-cache")
			h.Set("ETag", a.etag)
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
