package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A page of any site may make its visitors' browsers POST text/plain, form-urlencoded or multipart
// bodies anywhere without a CORS preflight; a body that is not declared application/json is refused
// 415 before its route does anything, so such a page can neither guess passwords (nor spend the
// lockout) nor sign anyone up.
func TestBodiesThatAreNotDeclaredJSONAreRefusedAndChangeNothing(t *testing.T) {
	e := newEnv(t)
	e.signup(t, "rita@example.com")
	before := len(e.events(t, ""))

	wrong := `{"email":"rita@example.com","password":"a wrong guess"}`
	signup := `{"email":"mallory@example.com","password":"correct horse battery","name":"M"}`
	for _, tc := range []struct {
		name, path string
		body       any
		headers    []string
	}{
		{"text/plain login", "/api/auth/login", wrong, []string{"Content-Type", "text/plain"}},
		{"text/plain;charset login", "/api/auth/login", wrong, []string{"Content-Type", "text/plain; charset=utf-8"}},
		{"form-urlencoded login", "/api/auth/login", wrong, []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"multipart signup", "/api/auth/signup", signup, []string{"Content-Type", "multipart/form-data; boundary=x"}},
		{"json-looking type signup", "/api/auth/signup", signup, []string{"Content-Type", "application/jsonp"}},
		{"form-urlencoded signup", "/api/auth/signup", signup, []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"no type signup", "/api/auth/signup", signup, []string{"Content-Type", ""}},
		{"no type login", "/api/auth/login", wrong, []string{"Content-Type", ""}},
		{"no type forgot", "/api/auth/password/forgot", `{"email":"rita@example.com"}`, []string{"Content-Type", ""}},
		{"chunked no type login", "/api/auth/login", strings.NewReader(wrong), []string{"Content-Type", ""}},
		{"chunked text/plain signup", "/api/auth/signup", strings.NewReader(signup), []string{"Content-Type", "text/plain"}},
	} {
		// More refusals than the lockout's budget: none of them may count on it.
		for range 12 {
			body := tc.body
			if r, ok := body.(*strings.Reader); ok { // a fresh reader each time: a spent one sends no body
				r.Seek(0, io.SeekStart)
			}
			wantCode(t, tc.name, e.do(t, "POST", tc.path, body, tc.headers...), http.StatusUnsupportedMediaType, "unsupported_media_type")
		}
	}
	if n := len(e.events(t, "")); n != before {
		t.Fatalf("refused requests recorded %d events", n-before)
	}
	// Nothing was counted on Rita's lockout, and Mallory was never signed up.
	wantStatus(t, "Rita's own login", e.loginWith(t, "rita@example.com", ownerPassword, "", "203.0.113.9"), http.StatusOK)
	e.signup(t, "mallory@example.com")
}

func TestJSONWithParametersIsAcceptedAndBodilessRequestsNeedNoType(t *testing.T) {
	e := newEnv(t, withCORSOrigins("https://app.example"))
	signup := `{"email":"jane@example.com","password":"correct horse battery","name":"Jane"}`
	wantStatus(t, "signup with charset", e.do(t, "POST", "/api/auth/signup", signup, "Content-Type", "application/json; charset=utf-8"), http.StatusCreated)
	login := `{"email":"jane@example.com","password":"correct horse battery"}`
	wantStatus(t, "login, type in capitals", e.do(t, "POST", "/api/auth/login", login, "Content-Type", "Application/JSON"), http.StatusOK)
	res := e.do(t, "POST", "/api/auth/login", strings.NewReader(login))
	wantStatus(t, "chunked JSON login", res, http.StatusOK)
	var ar authResponse
	res.json(t, &ar)

	// A preflight carries no type, and no route answers OPTIONS.
	wantStatus(t, "preflight", e.do(t, "OPTIONS", "/api/auth/login", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "POST"), http.StatusNoContent)
	if res := e.do(t, "OPTIONS", "/api/auth/login", "x", "Content-Type", "text/plain"); res.Status == http.StatusUnsupportedMediaType {
		t.Fatalf("OPTIONS with a body: %d %s", res.Status, res.Body)
	}
	wantStatus(t, "bodiless resend", e.do(t, "POST", "/api/auth/email/verify/resend", nil, bearer(ar.AccessToken)...), http.StatusServiceUnavailable) // no mail configured: it got past the type check
	wantStatus(t, "bodiless logout", e.do(t, "POST", "/api/auth/logout", nil, bearer(ar.AccessToken)...), http.StatusNoContent)
}
