package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// fuzzRefreshToken in a fuzzed body stands for a live refresh token, so the fuzzer can reach the
// rotation code and not only the decoder.
const fuzzRefreshToken = "$REFRESH"

// fuzzPassword is the password of the account FuzzAuthRequestBody signs up, as env.signup sets it.
const fuzzPassword = "correct horse battery"

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// FuzzAuthRequestBody posts each body to /api/auth/signup, /login and /refresh through the real
// handler, with every middleware, on a real SQLite store. Whatever the body (malformed JSON, unknown
// fields, trailing data, wrong types, control characters, invalid UTF-8, sizes around MaxBodyBytes
// with or without a Content-Length), the answer is never a 5xx, and every 4xx is the standard error
// body {"error":{"code","message"}} and nothing else; a 2xx is an AuthResponse.
//
// pad puts 2×pad bytes of whitespace before the body, which JSON allows, so the fuzzer can cross the
// body limit without a corpus of 64 KiB files; hideLength sends the body without a Content-Length, as
// a chunked request does, so the limit is met while decoding rather than up front.
func FuzzAuthRequestBody(f *testing.F) {
	// No rate limits and no lockout: every body reaches the rules, not a 429.
	e := newEnv(f, withConfig(func(c *config.Config) { c.Rules = ratelimit.Rules{} }))
	live := e.signup(f, "fuzz@example.com")
	handler := e.App.Handler()

	f.Add([]byte(`{"email":"fuzz@example.com","password":"`+fuzzPassword+`"}`), uint16(0), false)
	f.Add([]byte(`{"email":"new@example.com","password":"another good password","name":"N"}`), uint16(0), false)
	f.Add([]byte(`{"refreshToken":"`+fuzzRefreshToken+`","deviceFingerprint":"fp"}`), uint16(0), false)
	f.Add([]byte(`{"email":"a@b.c","password":"x"} {}`), uint16(0), false)
	f.Add([]byte(`{"email":1}`), uint16(0), true)
	f.Add([]byte(`{}`), uint16(api.MaxBodyBytes/2), true)

	f.Fuzz(func(t *testing.T, body []byte, pad uint16, hideLength bool) {
		body = bytes.ReplaceAll(body, []byte(fuzzRefreshToken), []byte(live.RefreshToken))
		if pad > 0 {
			body = append(bytes.Repeat([]byte(" "), 2*int(pad)), body...)
		}
		for _, path := range []string{"/api/auth/signup", "/api/auth/login", "/api/auth/refresh"} {
			r := httptest.NewRequest("POST", path, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			if hideLength {
				r.ContentLength = -1
			}
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, r)
			res := w.Result()
			code := checkAuthAnswer(t, path, res)

			switch {
			case len(body) > api.MaxBodyBytes && res.StatusCode < 300:
				t.Fatalf("%s: accepted a %d-byte body", path, len(body))
			case len(body) > api.MaxBodyBytes && !hideLength && code != "request_too_large":
				t.Fatalf("%s: a %d-byte body with its Content-Length got %d %s", path, len(body), res.StatusCode, code)
			case len(body) <= api.MaxBodyBytes && code == "request_too_large":
				t.Fatalf("%s: a %d-byte body is refused as too large", path, len(body))
			case res.StatusCode < 300:
				if problem := notOneObjectOf(body, bodyFields[path]); problem != "" {
					t.Fatalf("%s: accepted a body with %s: %q", path, problem, body)
				}
			}
		}
	})
}

// notOneObjectOf says what is wrong with an accepted body, "" if nothing: it must be one JSON object
// with no trailing data and no field but those named (matched without regard to case, as
// encoding/json matches them).
func notOneObjectOf(body []byte, fields []string) string {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return "no JSON object"
	}
	if _, err := dec.Token(); err != io.EOF {
		return "trailing data"
	}
	for k := range obj {
		if !slices.ContainsFunc(fields, func(f string) bool { return strings.EqualFold(f, k) }) {
			return "the unknown field " + strconv.Quote(k)
		}
	}
	return ""
}

// checkAuthAnswer fails t unless res is a non-5xx JSON answer: an AuthResponse on success, else only
// the standard error body, whose code it returns.
func checkAuthAnswer(t *testing.T, path string, res *http.Response) string {
	t.Helper()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode >= 500 {
		t.Fatalf("%s: %d %s", path, res.StatusCode, data)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: %d with Content-Type %q", path, res.StatusCode, ct)
	}
	if res.StatusCode < 300 {
		// AuthResponse may gain fields (docs/api.md: fields are only ever added), so unknown ones are no failure here.
		var ar authResponse
		if err := json.Unmarshal(data, &ar); err != nil || ar.AccessToken == "" || ar.Token != ar.AccessToken || ar.RefreshToken == "" {
			t.Fatalf("%s: %d with a body that is not an AuthResponse (%v): %s", path, res.StatusCode, err, data)
		}
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var body struct {
		Error struct {
			Code    string            `json:"code"`
			Message string            `json:"message"`
			Fields  map[string]string `json:"fields"`
		} `json:"error"`
	}
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("%s: %d with a body that is not the standard error body (%v): %s", path, res.StatusCode, err, data)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("%s: %d with more than one JSON value: %s", path, res.StatusCode, data)
	}
	if !snakeCase.MatchString(body.Error.Code) || body.Error.Message == "" {
		t.Fatalf("%s: %d with error code %q and message %q", path, res.StatusCode, body.Error.Code, body.Error.Message)
	}
	return body.Error.Code
}
