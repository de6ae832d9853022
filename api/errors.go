package api

import (
	"errors"
	"net/http"

	"github.com/fluxstudio/fluxauth"
)

// statusOf is the one table that turns error codes into HTTP statuses.
var statusOf = map[string]int{
	fluxauth.EInvalidJSON:              http.StatusBadRequest,
	fluxauth.EInvalidResetToken:        http.StatusBadRequest,
	fluxauth.EInvalidVerificationToken: http.StatusBadRequest,
	fluxauth.EInvalidCredentials:       http.StatusUnauthorized,
	fluxauth.EInvalidToken:             http.StatusUnauthorized,
	fluxauth.ESessionRevoked:           http.StatusUnauthorized,
	fluxauth.EInvalidRefreshToken:      http.StatusUnauthorized,
	fluxauth.ERefreshTokenExpired:      http.StatusUnauthorized,
	fluxauth.ERefreshTokenRevoked:      http.StatusUnauthorized,
	fluxauth.ERefreshTokenReused:       http.StatusUnauthorized,
	fluxauth.EInvalidIDToken:           http.StatusUnauthorized,
	fluxauth.EForbidden:                http.StatusForbidden,
	fluxauth.EEmailNotVerified:         http.StatusForbidden,
	fluxauth.ENotFound:                 http.StatusNotFound,
	fluxauth.EProviderDisabled:         http.StatusNotFound,
	fluxauth.EMethodNotAllowed:         http.StatusMethodNotAllowed,
	fluxauth.EEmailTaken:               http.StatusConflict,
	fluxauth.EAccountExists:            http.StatusConflict,
	fluxauth.ENoPassword:               http.StatusConflict,
	fluxauth.EIdentityInUse:            http.StatusConflict,
	fluxauth.EProviderAlreadyLinked:    http.StatusConflict,
	fluxauth.ELastSignInMethod:         http.StatusConflict,
	fluxauth.ERequestTooLarge:          http.StatusRequestEntityTooLarge,
	fluxauth.EUnsupportedMediaType:     http.StatusUnsupportedMediaType,
	fluxauth.EValidation:               http.StatusUnprocessableEntity,
	fluxauth.ERateLimited:              http.StatusTooManyRequests,
	fluxauth.EInternal:                 http.StatusInternalServerError,
	fluxauth.EDatabaseUnavailable:      http.StatusServiceUnavailable,
	fluxauth.EAuditUnavailable:         http.StatusServiceUnavailable,
	fluxauth.ECacheUnavailable:         http.StatusServiceUnavailable,
	fluxauth.EProviderUnavailable:      http.StatusServiceUnavailable,
	fluxauth.EServiceUnavailable:       http.StatusServiceUnavailable,
	fluxauth.EMailUnavailable:          http.StatusServiceUnavailable,
	fluxauth.EMFARequired:              http.StatusUnauthorized,
	fluxauth.EInvalidMFACode:           http.StatusUnauthorized,
	fluxauth.EInvalidMFAToken:          http.StatusUnauthorized,
	fluxauth.EReauthenticationRequired: http.StatusForbidden,
	fluxauth.EAAL2Required:             http.StatusForbidden,
	fluxauth.EMFANotEnabled:            http.StatusConflict,
}

type errorBody struct {
	Error errorDetail `json:"error"`
	// MFA is the pending second step of a mfa_required answer.
	MFA *mfaPending `json:"mfa,omitempty"`
}

type mfaPending struct {
	Token     string   `json:"token"`
	Methods   []string `json:"methods"`
	ExpiresIn int      `json:"expiresIn"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// writeError answers with err as the standard error body. An error that is not a *fluxauth.Error is
// internal: its text goes to the log with the request ID, never to the client. A failure to reach a
// dependency that did not name itself (the stores do not) is the database's: 503
// database_unavailable. The audit log and Redis name themselves (audit_unavailable,
// cache_unavailable). Every 5xx is logged at error level with the route pattern and status, which
// is what reports it (an error-level record reaches Sentry when configured); every 429 is counted
// for the rate-limit alert.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *fluxauth.Error
	if !errors.As(err, &fe) {
		if errors.Is(err, fluxauth.ErrUnavailable) {
			fe = fluxauth.Wrap(fluxauth.EDatabaseUnavailable, "The service is temporarily unavailable.", err)
		} else {
			fe = fluxauth.Wrap(fluxauth.EInternal, "An internal error occurred.", err)
		}
	}
	status, ok := statusOf[fe.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			"route", s.routeOf(r), "status", status, "code", fe.Code, "err", err)
	} else if fe.Err != nil {
		s.Logger.DebugContext(r.Context(), "request rejected", "code", fe.Code, "err", fe.Err)
	}
	if status == http.StatusTooManyRequests && s.RateLimited != nil {
		s.RateLimited(s.clientIP(r))
	}
	s.sendError(w, r, fe, status)
}

// sendError writes the standard error body, with the RateLimit headers of the request's tightest limit.
func (s *Server) sendError(w http.ResponseWriter, r *http.Request, fe *fluxauth.Error, status int) {
	setRateLimitHeaders(w.Header(), limitsOf(r))
	body := errorBody{Error: errorDetail{Code: fe.Code, Message: fe.Message, Fields: fe.Fields}}
	if fe.MFA != nil {
		body.MFA = &mfaPending{Token: fe.MFA.Token, Methods: fe.MFA.Methods, ExpiresIn: fe.MFA.ExpiresIn}
	}
	writeJSON(w, status, body)
}

// routeOf is the pattern of the route r matched ("POST /api/auth/login"), or "unmatched": reports
// and metrics name routes, never raw paths, which carry identifiers and are the client's choice.
// Middleware outside the mux sees a request the mux has not routed, so it is asked.
func (s *Server) routeOf(r *http.Request) string {
	pattern := r.Pattern
	if pattern == "" && s.mux != nil {
		_, pattern = s.mux.Handler(r)
	}
	if pattern == "" || pattern == "/" {
		return "unmatched"
	}
	return pattern
}
