package api

import (
	"net/http"
	"net/http/pprof"
	"slices"

	"github.com/fluxstudio/fluxauth/account"
)

// Auth is who may call a route. It decides the route's handler chain when it is registered, so the
// table cannot say one thing and the server do another.
type Auth int

const (
	// Public routes answer anyone.
	Public Auth = iota
	// Bearer routes need a valid access token (account.Service.Authenticate).
	Bearer
	// Admin routes need an admin's access token (account.Service.RequireAdmin).
	Admin
	// Internal routes are served by InternalHandler, on the operators' own listener, never by the
	// public server.
	Internal
)

func (a Auth) String() string {
	switch a {
	case Public:
		return "public"
	case Bearer:
		return "bearer"
	case Admin:
		return "admin"
	case Internal:
		return "internal"
	}
	return "unknown"
}

// Route is one endpoint of the service: the method and ServeMux path pattern it answers, who may
// call it, and its handler. Routes returns them all.
type Route struct {
	// Method is the HTTP method; a GET route answers HEAD too. Empty: every method (pprof).
	Method string
	// Pattern is the ServeMux path pattern, e.g. /api/auth/sessions/{id}; one ending in / answers
	// the subtree below it.
	Pattern string
	Auth    Auth

	// Exactly one handler is set: serve for a public route written as a handlerFunc, authed for a
	// bearer or admin route, handler for a plain http.Handler (the dashboard, the internal routes).
	serve   func(*Server, http.ResponseWriter, *http.Request) error
	authed  func(*Server, http.ResponseWriter, *http.Request, *account.Principal) error
	handler func(*Server) http.Handler
}

// String is the route's ServeMux pattern, "GET /healthz": the name metrics and error reports give
// the route.
func (r Route) String() string {
	if r.Method == "" {
		return r.Pattern
	}
	return r.Method + " " + r.Pattern
}

// routes is the one table the public server and the internal listener register.
var routes = []Route{
	{Method: "GET", Pattern: "/healthz", Auth: Public, serve: (*Server).healthz},
	{Method: "GET", Pattern: "/readyz", Auth: Public, serve: (*Server).readyz},
	{Method: "GET", Pattern: "/.well-known/jwks.json", Auth: Public, serve: (*Server).jwks},

	{Method: "POST", Pattern: "/api/auth/signup", Auth: Public, serve: (*Server).signup},
	{Method: "POST", Pattern: "/api/auth/login", Auth: Public, serve: (*Server).login},
	{Method: "POST", Pattern: "/api/auth/refresh", Auth: Public, serve: (*Server).refresh},
	{Method: "POST", Pattern: "/api/auth/google", Auth: Public, serve: (*Server).google},
	{Method: "POST", Pattern: "/api/auth/apple", Auth: Public, serve: (*Server).apple},
	{Method: "POST", Pattern: "/api/auth/legacy/exchange", Auth: Public, serve: (*Server).exchangeLegacyToken},
	{Method: "POST", Pattern: "/api/auth/identities/{provider}", Auth: Bearer, authed: (*Server).linkIdentity},
	{Method: "DELETE", Pattern: "/api/auth/identities/{provider}", Auth: Bearer, authed: (*Server).unlinkIdentity},
	{Method: "GET", Pattern: "/api/auth/me", Auth: Bearer, authed: (*Server).me},
	{Method: "GET", Pattern: "/api/auth/sessions", Auth: Bearer, authed: (*Server).sessions},
	{Method: "DELETE", Pattern: "/api/auth/sessions/{id}", Auth: Bearer, authed: (*Server).deleteSession},
	{Method: "POST", Pattern: "/api/auth/logout", Auth: Bearer, authed: (*Server).logout},
	{Method: "POST", Pattern: "/api/auth/logout-all", Auth: Bearer, authed: (*Server).logoutAll},

	// The account lifecycle: password reset by mail, password change, address verification.
	{Method: "POST", Pattern: "/api/auth/password/forgot", Auth: Public, serve: (*Server).forgotPassword},
	{Method: "POST", Pattern: "/api/auth/password/reset", Auth: Public, serve: (*Server).resetPassword},
	{Method: "POST", Pattern: "/api/auth/password", Auth: Bearer, authed: (*Server).changePassword},
	{Method: "POST", Pattern: "/api/auth/email/verify", Auth: Public, serve: (*Server).verifyEmail},
	{Method: "POST", Pattern: "/api/auth/email/verify/resend", Auth: Bearer, authed: (*Server).resendVerification},

	{Method: "GET", Pattern: "/api/admin/security/events", Auth: Admin, authed: (*Server).listEvents},
	{Method: "GET", Pattern: "/api/admin/security/summary", Auth: Admin, authed: (*Server).summary},
	{Method: "GET", Pattern: "/api/admin/security/timeseries", Auth: Admin, authed: (*Server).timeseries},
	{Method: "GET", Pattern: "/api/admin/security/stream", Auth: Admin, authed: (*Server).securityStream},
	{Method: "GET", Pattern: "/api/admin/users", Auth: Admin, authed: (*Server).searchUsers},
	{Method: "GET", Pattern: "/api/admin/users/{id}", Auth: Admin, authed: (*Server).adminUser},
	{Method: "DELETE", Pattern: "/api/admin/sessions/{id}", Auth: Admin, authed: (*Server).adminRevokeSession},
	{Method: "POST", Pattern: "/api/admin/users/{id}/revoke-sessions", Auth: Admin, authed: (*Server).adminRevokeSessions},
	{Method: "POST", Pattern: "/api/admin/users/{id}/unlock", Auth: Admin, authed: (*Server).adminUnlock},

	// The dashboard's page is public: it signs in and reads everything through the API like any
	// client.
	{Method: "GET", Pattern: "/admin/", Auth: Public, handler: func(s *Server) http.Handler { return http.StripPrefix("/admin", s.Dashboard) }},
	{Method: "GET", Pattern: "/admin", Auth: Public, handler: func(*Server) http.Handler {
		return http.RedirectHandler("/admin/", http.StatusMovedPermanently)
	}},

	{Method: "GET", Pattern: "/metrics", Auth: Internal, handler: func(s *Server) http.Handler { return s.Metrics.handler() }},
	{Pattern: "/debug/pprof/", Auth: Internal, handler: plain(pprof.Index)},
	{Pattern: "/debug/pprof/cmdline", Auth: Internal, handler: plain(pprof.Cmdline)},
	{Pattern: "/debug/pprof/profile", Auth: Internal, handler: plain(pprof.Profile)},
	{Pattern: "/debug/pprof/symbol", Auth: Internal, handler: plain(pprof.Symbol)},
	{Pattern: "/debug/pprof/trace", Auth: Internal, handler: plain(pprof.Trace)},
}

func plain(fn http.HandlerFunc) func(*Server) http.Handler {
	return func(*Server) http.Handler { return fn }
}

// Routes returns every route the service answers, public and internal; anything else is answered
// 404 not_found, or 405 method_not_allowed on a path that has other methods.
func Routes() []Route { return slices.Clone(routes) }

// register adds every route of the given kinds to mux, each behind the check its Auth names. It is
// the only place routes are registered.
func (s *Server) register(mux *http.ServeMux, internal bool) {
	for _, rt := range routes {
		if (rt.Auth == Internal) != internal {
			continue
		}
		h := s.routeHandler(rt)
		if !internal {
			h = s.jsonBodiesOnly(h)
		}
		mux.Handle(rt.String(), h)
	}
}

// routeHandler chains rt's handler behind the check of its Auth. A handler of the wrong shape for
// its Auth is a mistake in the table, caught when the server is built.
func (s *Server) routeHandler(rt Route) http.Handler {
	switch {
	case rt.Auth == Public && rt.serve != nil && rt.authed == nil && rt.handler == nil:
		return s.handle(func(w http.ResponseWriter, r *http.Request) error { return rt.serve(s, w, r) })
	case (rt.Auth == Public || rt.Auth == Internal) && rt.handler != nil && rt.serve == nil && rt.authed == nil:
		return rt.handler(s)
	case (rt.Auth == Bearer || rt.Auth == Admin) && rt.authed != nil && rt.serve == nil && rt.handler == nil:
		fn := func(w http.ResponseWriter, r *http.Request, p *account.Principal) error { return rt.authed(s, w, r, p) }
		if rt.Auth == Admin {
			return s.handle(s.admin(fn))
		}
		return s.handle(s.authed(fn))
	}
	panic("api: route " + rt.String() + " (" + rt.Auth.String() + ") has no handler of the shape its auth needs")
}
