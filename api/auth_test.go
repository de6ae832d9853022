package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

func TestSignupLoginMe(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "  Jane@Example.com ", "name", "Jane Doe", "deviceName", "Jane's laptop")
	if ar.Token == "" || ar.Token != ar.AccessToken {
		t.Fatalf("legacy token must equal accessToken: %+v", ar)
	}
	if ar.RefreshToken == "" || ar.ExpiresIn != 900 || ar.TokenType != "Bearer" {
		t.Fatalf("bad auth response: %+v", ar)
	}
	if ar.User.Email != "Jane@Example.com" || ar.User.Name != "Jane Doe" || ar.User.UserType != "client" || ar.User.ID == "" {
		t.Fatalf("bad user: %+v", ar.User)
	}

	res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "jane@EXAMPLE.com", "password": "correct horse battery"})
	if res.Status != 200 {
		t.Fatalf("login: %d %s", res.Status, res.Body)
	}
	var login authResponse
	res.json(t, &login)
	if login.User.ID != ar.User.ID || login.AccessToken == "" || login.RefreshToken == ar.RefreshToken {
		t.Fatalf("login response: %+v", login)
	}

	res = e.do(t, "GET", "/api/auth/me", nil, bearer(login.AccessToken)...)
	if res.Status != 200 {
		t.Fatalf("me: %d %s", res.Status, res.Body)
	}
	var me struct {
		User map[string]any `json:"user"`
	}
	res.json(t, &me)
	// emailVerified is false: a password signup proves nothing about the address.
	want := map[string]any{"id": ar.User.ID, "email": "Jane@Example.com", "name": "Jane Doe", "userType": "client", "emailVerified": false}
	for k, v := range want {
		if me.User[k] != v {
			t.Fatalf("me.user.%s = %#v, want %#v", k, me.User[k], v)
		}
	}
	if len(me.User) != len(want) {
		t.Fatalf("me.user has extra fields: %v", me.User)
	}
}

// The AuthResponse fields old clients read, plus the additive deviceToken on password sign-ins (signup, login) only.
func TestAuthResponseHasExactlyTheSpecFields(t *testing.T) {
	e := newEnv(t)
	spec := []string{"token", "accessToken", "refreshToken", "expiresIn", "tokenType", "user"}
	signup := e.do(t, "POST", "/api/auth/signup", map[string]string{"email": "fields@example.com", "password": "correct horse battery", "name": "F"})
	var ar authResponse
	signup.json(t, &ar)
	login := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "fields@example.com", "password": "correct horse battery"})
	refresh := e.do(t, "POST", "/api/auth/refresh", map[string]string{"refreshToken": ar.RefreshToken})
	for _, c := range []struct {
		name string
		res  *response
		want []string
	}{
		{"signup", signup, append(spec, "deviceToken")},
		{"login", login, append(spec, "deviceToken")},
		{"refresh", refresh, spec},
	} {
		var raw map[string]json.RawMessage
		c.res.json(t, &raw)
		for _, k := range c.want {
			if _, ok := raw[k]; !ok {
				t.Errorf("%s: missing %s", c.name, k)
			}
		}
		if len(raw) != len(c.want) {
			t.Errorf("%s: unexpected fields: %s", c.name, c.res.Body)
		}
		if strings.Contains(string(c.res.Body), "argon2") || strings.Contains(string(c.res.Body), "password") {
			t.Errorf("%s: response leaks password material: %s", c.name, c.res.Body)
		}
	}
}

func TestSignupValidation(t *testing.T) {
	e := newEnv(t)
	e.signup(t, "taken@example.com")
	cases := []struct {
		name   string
		body   map[string]string
		status int
		code   string
		field  string
	}{
		{"invalid email", map[string]string{"email": "not-an-email", "password": "correct horse battery", "name": "A"}, 422, "validation_failed", "email"},
		{"short password", map[string]string{"email": "a@example.com", "password": "short", "name": "A"}, 422, "validation_failed", "password"},
		{"common password", map[string]string{"email": "a@example.com", "password": "password123", "name": "A"}, 422, "validation_failed", "password"},
		{"missing name", map[string]string{"email": "a@example.com", "password": "correct horse battery"}, 422, "validation_failed", "name"},
		{"admin is never self-assigned", map[string]string{"email": "a@example.com", "password": "correct horse battery", "name": "A", "userType": "admin"}, 422, "validation_failed", "userType"},
		{"unknown user type", map[string]string{"email": "a@example.com", "password": "correct horse battery", "name": "A", "userType": "wizard"}, 422, "validation_failed", "userType"},
		{"duplicate email differing in case", map[string]string{"email": "TAKEN@example.com", "password": "correct horse battery", "name": "A"}, 409, "email_taken", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := e.do(t, "POST", "/api/auth/signup", c.body)
			if res.Status != c.status || res.errorCode(t) != c.code {
				t.Fatalf("got %d %s", res.Status, res.Body)
			}
			if c.field != "" {
				var body struct {
					Error struct {
						Fields map[string]string `json:"fields"`
					} `json:"error"`
				}
				res.json(t, &body)
				if body.Error.Fields[c.field] == "" {
					t.Fatalf("no detail for %s: %s", c.field, res.Body)
				}
			}
			if pw := c.body["password"]; pw != "" && strings.Contains(string(res.Body), pw) {
				t.Fatal("the password was echoed")
			}
		})
	}
	if _, err := e.Store.UserByEmail(t.Context(), "a@example.com"); err == nil {
		t.Fatal("a rejected signup created a user")
	}
}

func TestSignupAcceptsConfiguredSelfServiceType(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "designer@example.com", "userType", "designer")
	if ar.User.UserType != "designer" {
		t.Fatalf("userType %q", ar.User.UserType)
	}
}

func TestLoginFailuresLookIdentical(t *testing.T) {
	e := newEnv(t)
	e.signup(t, "known@example.com")
	wrong := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "known@example.com", "password": "wrong password!"})
	unknown := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "nobody@example.com", "password": "wrong password!"})
	if wrong.Status != 401 || unknown.Status != 401 {
		t.Fatalf("statuses %d %d", wrong.Status, unknown.Status)
	}
	if string(wrong.Body) != string(unknown.Body) || wrong.errorCode(t) != "invalid_credentials" {
		t.Fatalf("bodies differ:\n%s\n%s", wrong.Body, unknown.Body)
	}
	evs := e.events(t, fluxauth.EventFailedLogin)
	if len(evs) != 2 {
		t.Fatalf("%d failed_login events", len(evs))
	}
}

func TestMeRejectsBadTokens(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "me@example.com")
	cases := map[string][]string{
		"no header":        nil,
		"not bearer":       {"Authorization", "Basic " + ar.AccessToken},
		"garbage":          bearer("not.a.jwt"),
		"refresh as token": bearer(ar.RefreshToken),
		"tampered":         bearer(ar.AccessToken[:len(ar.AccessToken)-4] + "AAAA"),
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			res := e.do(t, "GET", "/api/auth/me", nil, h...)
			if res.Status != 401 || res.errorCode(t) != "invalid_token" {
				t.Fatalf("got %d %s", res.Status, res.Body)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		e.Clock.Advance(16 * time.Minute)
		res := e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...)
		if res.Status != 401 || res.errorCode(t) != "invalid_token" {
			t.Fatalf("got %d %s", res.Status, res.Body)
		}
	})
}

func TestJWKSPublishesOnlyPublicKeys(t *testing.T) {
	e := newEnv(t)
	res := e.do(t, "GET", "/.well-known/jwks.json", nil)
	if res.Status != 200 {
		t.Fatalf("%d", res.Status)
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	res.json(t, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0]["kty"] != "EC" || jwks.Keys[0]["kid"] == "" {
		t.Fatalf("jwks %s", res.Body)
	}
	if _, ok := jwks.Keys[0]["d"]; ok {
		t.Fatal("private key in JWKS")
	}
}

func TestLoginRehashesLegacyBcrypt(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "legacy@example.com")
	// bcrypt of "correct horse battery" at cost 4, as the legacy app stored it.
	legacy := bcryptHash(t, "correct horse battery")
	if err := e.Store.SetPasswordHash(t.Context(), ar.User.ID, legacy, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "legacy@example.com", "password": "correct horse battery"})
	if res.Status != http.StatusOK {
		t.Fatalf("legacy login %d %s", res.Status, res.Body)
	}
	u, err := e.Store.UserByID(t.Context(), ar.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("not rehashed: %s", u.PasswordHash[:7])
	}
	res = e.do(t, "POST", "/api/auth/login", map[string]string{"email": "legacy@example.com", "password": "correct horse battery"})
	if res.Status != http.StatusOK {
		t.Fatalf("login after rehash %d", res.Status)
	}
}
