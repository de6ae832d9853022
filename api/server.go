// Package api is fluxauth's HTTP server: routes, handlers, middleware, the client IP, and the one
// table that maps error codes to HTTP statuses.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/feed"
	"github.com/fluxstudio/fluxauth/internal/netaddr"
)

// MaxBodyBytes is the largest request body accepted; larger ones get 413 request_too_large.
const MaxBodyBytes = 64 << 10

// Pinger reports whether a dependency answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Server holds what the handlers need. Package app builds it; every field not marked "when set" is
// required.
type Server struct {
	Logger *slog.Logger
	// DB is pinged by /readyz.
	DB Pinger
	// Accounts is the auth rules.
	Accounts *account.Service
	// Feed serves the admin API's live stream. Close it when the server shuts down (http.Server.RegisterOnShutdown), or streams hold the drain until its deadline.
	Feed *feed.Hub
	// Heartbeat is how often an idle stream sends a comment; zero means DefaultHeartbeat.
	Heartbeat time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies *netaddr.ProxyList
	// Metrics, when set, are fed by every request; InternalHandler serves them, never this server.
	Metrics *Metrics
	// Degraded, when set, lists dependencies that are degraded but not fatal (e.g. Redis); /readyz
	// reports them and stays 200.
	Degraded func() []string
	// CORSOrigins are the exact origins (netaddr.ParseOrigins) whose pages may call the API; none by default.
	CORSOrigins []string
	// RateLimited, when set, is told the client IP of every 429 answered (the rate-limit alert
	// counts them). It must not block.
	RateLimited func(ip string)
	// Dashboard serves the security dashboard's page at /admin/ (dashboard.Handler); the page signs in and reads everything through the API like any client.
	Dashboard http.Handler

	mux *http.ServeMux
}

// handlerFunc is a handler that returns its failure; the adapter writes it once.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// Handler returns the complete HTTP handler with every middleware applied.
func (s *Server) Handler() http.Handler {
	s.mux = http.NewServeMux()
	s.register(s.mux, false)
	s.mux.HandleFunc("/", s.handle(s.unmatched)) // what no route takes: 404 or 405 (unmatched)
	return s.withRequestID(s.withBrowserDefaults(s.withAccessLog(s.withRecover(s.withCORS(
		s.withBodyLimit(s.withLimitReport(s.withMetrics(s.mux))))))))
}

// probeMethods are the methods unmatched tries on the path; HEAD matches the GET routes.
var probeMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// unmatched answers a request no route took. The catch-all "/" that brings it here, which makes
// those answers the standard error body, also hides the mux's own 405: so it asks the mux which
// methods the path has, and answers 405 method_not_allowed with Allow when there are some, else
// 404 not_found. This costs a few lookups on unmatched requests only.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) error {
	var allowed []string
	for _, m := range probeMethods {
		if m == r.Method {
			continue
		}
		if _, pattern := s.mux.Handler(&http.Request{Method: m, URL: r.URL, Host: r.Host}); pattern != "/" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) == 0 {
		return fluxauth.Errorf(fluxauth.ENotFound, "No such endpoint.")
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return fluxauth.Errorf(fluxauth.EMethodNotAllowed, "This endpoint does not answer %s.", r.Method)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.DB.Ping(ctx); err != nil {
		return fluxauth.Wrap(fluxauth.EDatabaseUnavailable, "The database is unreachable.", err)
	}
	body := map[string]any{"status": "ready", "database": "ok"}
	if s.Degraded != nil {
		if d := s.Degraded(); len(d) > 0 {
			body["status"] = "degraded"
			body["degraded"] = d
		}
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// withRequestID echoes a well-formed X-Request-ID or makes one, and puts it in the request context so
// every log line carries it.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(fluxauth.WithRequestID(r.Context(), id)))
	})
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withAccessLog logs one line per request: never headers, bodies or query strings, which may hold
// credentials.
func (s *Server) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		s.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("ip", s.clientIP(r)),
		)
	})
}

// withRecover turns a panic into 500 internal; the panic's value goes to the log only, in one
// error-level record logged while the panic's stack is still there to be reported with it.
func (s *Server) withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.ErrorContext(r.Context(), "panic in handler", "method", r.Method, "path", r.URL.Path,
					"route", s.routeOf(r), "status", http.StatusInternalServerError, "code", fluxauth.EInternal, "panic", v)
				s.sendError(w, r, fluxauth.Errorf(fluxauth.EInternal, "An internal error occurred."), http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) withBodyLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			s.writeError(w, r, fluxauth.Errorf(fluxauth.ERequestTooLarge, "The request body is larger than %d bytes.", MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// jsonBodiesOnly answers 415 unsupported_media_type to a request that has a body (Content-Length
// above zero, or a body of unknown length: chunked) whose one Content-Type is not application/json
// (parameters such as charset are allowed), before its route does anything. A browser page of any
// site may POST text/plain, application/x-www-form-urlencoded or multipart/form-data to any address
// without a CORS preflight, and so could make its visitors' browsers guess passwords; an
// application/json body needs a preflight, which only FLUXAUTH_CORS_ORIGINS pass. Bodiless requests
// (logout, resend) need no type, and OPTIONS never reaches a route.
func (s *Server) jsonBodiesOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Method != http.MethodOptions && !isJSONContentType(r.Header.Values("Content-Type")) {
			s.writeError(w, r, fluxauth.Errorf(fluxauth.EUnsupportedMediaType, "A request body must be sent with Content-Type: application/json."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isJSONContentType reports whether the request's Content-Type values are exactly one
// application/json, any case, with or without parameters.
func isJSONContentType(values []string) bool {
	if len(values) != 1 {
		return false
	}
	mt, _, err := mime.ParseMediaType(values[0])
	return err == nil && mt == "application/json"
}

// decodeJSON reads the request body into the struct v points to, refusing unknown fields and
// trailing data, and then enforces the bounds of its fields (checkFields), before anything is done
// with them.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return fluxauth.Errorf(fluxauth.ERequestTooLarge, "The request body is larger than %d bytes.", MaxBodyBytes)
		case errors.Is(err, io.EOF):
			return fluxauth.Errorf(fluxauth.EInvalidJSON, "The request body must be a JSON object.")
		default:
			return fluxauth.Wrap(fluxauth.EInvalidJSON, "The request body is not valid JSON: "+jsonProblem(err), err)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fluxauth.Errorf(fluxauth.ERequestTooLarge, "The request body is larger than %d bytes.", MaxBodyBytes)
		}
		return fluxauth.Errorf(fluxauth.EInvalidJSON, "The request body must hold a single JSON object.")
	}
	return checkFields(v)
}

// jsonProblem describes a decoding error without echoing the client's values.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return "field " + typeErr.Field + " has the wrong type."
	case errors.As(err, &syntaxErr):
		return "syntax error."
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "."
	default:
		return "malformed."
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
