package api

import (
	"net/http"
)

// withBrowserDefaults gives every answer the headers that keep a browser from misusing it: no MIME
// sniffing (a JSON error must never be run as a script or rendered as HTML), no Referer sent from
// it, and no caching of credentials, tokens or account data. A handler may relax Cache-Control for
// public data (the JWKS).
func (s *Server) withBrowserDefaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// What a CORS preflight allows: the API's methods and the request headers its clients send; what an
// answer lets the page read besides the safelisted headers; and how long a browser may keep a
// preflight's answer.
const (
	corsAllowMethods  = "GET, POST, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, X-Device-Fingerprint, X-Request-ID"
	corsExposeHeaders = "X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
	corsMaxAge        = "600"
)

// withCORS lets pages of the listed origins call the API: a request whose Origin is one of them is
// answered with Access-Control-Allow-Origin naming it, and its preflight (OPTIONS with
// Access-Control-Request-Method) with 204 and what it may send. Any other origin gets no CORS header,
// so the browser keeps the answer from its page; its preflight goes on to the routes, which have no
// OPTIONS (405). Credentials are bearer tokens a page sends itself, never cookies, so no
// Access-Control-Allow-Credentials. With no origins listed (the default) nothing is added.
func (s *Server) withCORS(next http.Handler) http.Handler {
	if len(s.CORSOrigins) == 0 {
		return next
	}
	allowed := make(map[string]bool, len(s.CORSOrigins))
	for _, o := range s.CORSOrigins {
		allowed[o] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Every answer depends on Origin, including those without CORS headers: a cache must not
		// hand one origin's answer to another.
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if !allowed[origin] {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
