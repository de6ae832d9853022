package alert_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/getsentry/sentry-go"

	"github.com/fluxstudio/fluxauth/alert"
)

// Secrets shaped like fluxauth's own.
const (
	accessToken  = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1LTEiLCJzaWQiOiJzLTEifQ.MEUCIQDx7Gq3kPZ_sig-nature"
	refreshToken = "AQ7mXk2pL9vRt4sWq8nYb3cZd6fGh1jKl5oPu0iE-_Aa9Bb8Cc7Dd6Ee5Ff4Gg3Hh2Ii1Jj0KkLlMmNnOoPpQqRrSsTt"
	legacyToken  = "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe_Dc-BaZy9Xw"
	deviceToken  = "dvT_4kQ9mZp2Lx7Rw1Vb8Nc3Hs6Jf0Gd5Ya-Ue2Io9P"
	idToken      = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2FjY291bnRzLmdvb2dsZS5jb20ifQ.c2lnbmF0dXJl"
	userPassword = "Tr0ub4dor&3-horse"
	jwtSecret    = "hs256-shared-secret-at-least-32-bytes-long!!"
	dbPassword   = "pg-Secret-77"
	smtpPassword = "smtp-Pa55word"
	pemKey       = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRT\nBnVJk5oBVn/Hrj9RNe+WoAoGCCqGSM49\n-----END EC PRIVATE KEY-----"
)

// Free text: each case's secret must be gone and what it keeps must stay, so reports remain useful.
func TestScrubberText(t *testing.T) {
	s := alert.NewScrubber(jwtSecret, dbPassword)
	cases := []struct {
		name   string
		in     string
		secret string
		keep   []string
	}{
		{"a JWT access token in an error", "verify " + accessToken + ": expired", accessToken, []string{"verify", "expired"}},
		{"a Google ID token", "id token " + idToken + " refused", idToken, []string{"refused"}},
		{"a short JWT, each part shorter than a token", "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln seen", "eyJzdWIiOiJ1In0", []string{"seen"}},
		{"an Authorization header line", "Authorization: Bearer " + accessToken, accessToken, []string{"Authorization"}},
		{"a bearer credential in prose", "sent bearer " + legacyToken + " twice", legacyToken, []string{"twice"}},
		{"a short bearer credential", "sent Bearer tok-123.abc twice", "tok-123.abc", []string{"twice"}},
		{"basic credentials in prose", "retried with Basic dXNlcjpwYXNz today", "dXNlcjpwYXNz", []string{"today"}},
		{"a cookie of another name", "header Cookie: session=s3ss10n-value", "s3ss10n-value", []string{"header"}},
		{"a cookie header line", "Cookie: fluxauth_session=" + refreshToken, refreshToken, []string{"Cookie"}},
		{"a refresh token on its own", "refresh " + refreshToken + " reused", refreshToken, []string{"refresh", "reused"}},
		{"a legacy refresh token", "token " + legacyToken, legacyToken, nil},
		{"a device token", "device " + deviceToken, deviceToken, nil},
		{"password=value", "login password=" + userPassword + " user=ann", userPassword, []string{"user=ann"}},
		{"quoted password", `smtp_password="` + smtpPassword + `" host=mail`, smtpPassword, []string{"host=mail"}},
		{"a JSON member", `{"email":"ann@example.com","password":"` + userPassword + `"}`, userPassword, []string{"ann@example.com"}},
		{"a JSON member with escapes", `{"newPassword": "a\"b` + userPassword + `"}`, userPassword, nil},
		{"a query string", "GET /x?nonce=n-0nce-value&refreshToken=" + refreshToken + "&page=2", "n-0nce-value", []string{"page=2"}},
		{"a postgres URL", "dial postgres://fluxauth:" + dbPassword + "@db.internal:5432/auth failed", dbPassword, []string{"db.internal:5432", "fluxauth"}},
		{"an SMTP URL", "smtp://mailer:" + smtpPassword + "@smtp.example.com:587", smtpPassword, []string{"smtp.example.com"}},
		{"a configured secret anywhere", "HS256 key " + jwtSecret + " loaded", jwtSecret, []string{"loaded"}},
		{"a PEM private key", "key file holds " + pemKey + " and more", "BnVJk5oBVn/Hrj9RNe+WoAoGCCqGSM49", []string{"key file holds"}},
		{"an API key pair", "api_key=" + legacyToken, legacyToken, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := s.Text(c.in)
			if strings.Contains(got, c.secret) {
				t.Fatalf("secret survived: %q", got)
			}
			if !strings.Contains(got, alert.Filtered) {
				t.Fatalf("nothing marked filtered: %q", got)
			}
			for _, k := range c.keep {
				if !strings.Contains(got, k) {
					t.Errorf("lost %q: %q", k, got)
				}
			}
		})
	}
}

// The gaps of issue 23, each caught by one rule only, with the exact text kept around it: where an
// unquoted value that holds spaces ends is part of the rule.
func TestScrubberTextExactly(t *testing.T) {
	s := alert.NewScrubber(jwtSecret)
	for _, c := range []struct{ name, in, want string }{
		{"a passphrase with spaces", "password=correct horse battery staple", "password=" + alert.Filtered},
		{"spaces end before the next key", "login password=correct horse battery user=ann status=401", "login password=" + alert.Filtered + " user=ann status=401"},
		{"spaces end before a key with a colon", "smtp_pass=two words host: mail.example.com", "smtp_pass=" + alert.Filtered + " host: mail.example.com"},
		{"spaces end at the end of the line", "db_password=a b c\nnext line kept", "db_password=" + alert.Filtered + "\nnext line kept"},
		{"spaces end at , ; & and quotes", `password=a b, kept; secret=c d; kept & token=e f "kept"`, "password=" + alert.Filtered + ", kept; secret=" + alert.Filtered + "; kept & token=" + alert.Filtered + ` "kept"`},
		{"a quoted value with spaces", `password="a b c" kept`, "password=" + alert.Filtered + " kept"},
		{"an unclosed quote", `password="a b c`, "password=" + alert.Filtered},
		{"an SMTP URL whose password holds @", "dial smtp://mailer:p@ss@smtp.example.com:587 failed", "dial smtp://mailer:" + alert.Filtered + "@smtp.example.com:587 failed"},
		{"a URL's @ in its query stays", "GET https://u:pw@h.example/x?to=a@b.example", "GET https://u:" + alert.Filtered + "@h.example/x?to=a@b.example"},
		{"pw: value", "auth pw: hunter2hunter2 refused", "auth pw: " + alert.Filtered + " refused"},
		{"pw=value", "pw=hunter2hunter2", "pw=" + alert.Filtered},
		{"smtp_pass: value", "smtp_pass: hunter2hunter2", "smtp_pass: " + alert.Filtered},
		{"words that hold pw or pass are no names", "upward=3 passes: 2 bypass=on", "upward=3 passes: 2 bypass=on"},
	} {
		if got := s.Text(c.in); got != c.want {
			t.Errorf("%s:\n  %q became\n  %q, want\n  %q", c.name, c.in, got, c.want)
		}
	}
}

// What identifies a report is kept: request IDs, UUIDs, hashes, error codes, routes, plain words.
func TestScrubberKeepsIdentifiers(t *testing.T) {
	s := alert.NewScrubber(jwtSecret)
	for _, in := range []string{
		"request 0f3c9a7e5b2d4c1a8e6f0b9d7c5a3e1f failed",
		"session 0195a4b2-7c3d-7e8f-9a0b-1c2d3e4f5a6b revoked",
		"hash 9f86d081884c7d659a2fea0c55ad015a3bf4f1b2b0b822cd15d2230c23e5c7b7",
		"code=refresh_token_reused route=POST /api/auth/refresh",
		"token: malformed refresh token",
		"invalid_credentials: The email or password is incorrect.",
		"basic validation failed",
		"github.com/fluxstudio/fluxauth/internal/testserver.Start",
	} {
		if got := s.Text(in); got != in {
			t.Errorf("%q became %q", in, got)
		}
	}
}

func TestSensitiveNames(t *testing.T) {
	for name, want := range map[string]bool{
		"password": true, "currentPassword": true, "new_password": true, "refreshToken": true,
		"accessToken": true, "token": true, "idToken": true, "identityToken": true, "deviceToken": true,
		"nonce": true, "Authorization": true, "Cookie": true, "Set-Cookie": true, "X-Refresh-Token": true,
		"smtp_password": true, "SMTP-Pass": true, "pw": true, "db_pw": true, "jwt_secret": true, "signing_keys": true, "private_key": true,
		"api-key": true, "auth": true, "dsn": true, "webhook_url": true, "client_secret": true,
		"token_id": false, "spentTokenId": false, "tokenType": false, "email": false, "user_id": false,
		"sessionId": false, "route": false, "request_id": false, "ip": false, "oauth_provider": false,
		"key": false, "reason": false,
	} {
		if got := alert.SensitiveName(name); got != want {
			t.Errorf("SensitiveName(%q) = %v, want %v", name, got, want)
		}
	}
}

// Structured values: secret names are filtered whole at any depth, everything else is scrubbed as
// text, and the input is not changed (an event's metadata is shared with other subscribers).
func TestScrubberValueFiltersSecretNamesAtAnyDepthWithoutChangingItsInput(t *testing.T) {
	s := alert.NewScrubber()
	in := map[string]any{
		"password": userPassword,
		"nested":   map[string]any{"refreshToken": refreshToken, "note": "bearer " + legacyToken, "count": 3},
		"list":     []any{map[string]any{"nonce": "n-1"}, "Cookie: a=" + deviceToken},
		"headers":  map[string]string{"Authorization": "Basic dXNlcjpwYXNz", "Accept": "application/json"},
		"struct":   struct{ DeviceToken, Name string }{deviceToken, "phone"},
		"reason":   "refresh_token_reused",
	}
	before, _ := json.Marshal(in)
	out, _ := json.Marshal(s.Value("", in))
	for _, secret := range []string{userPassword, refreshToken, legacyToken, "n-1", deviceToken, "dXNlcjpwYXNz"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%q survived in %s", secret, out)
		}
	}
	for _, keep := range []string{"refresh_token_reused", "application/json", "phone", `"count":3`} {
		if !strings.Contains(string(out), keep) {
			t.Errorf("lost %q: %s", keep, out)
		}
	}
	after, _ := json.Marshal(in)
	if string(before) != string(after) {
		t.Fatalf("input changed:\n%s\n%s", before, after)
	}
}

// The BeforeSend hook: every place of an event a secret can hide.
func TestScrubberEventCleansEveryField(t *testing.T) {
	s := alert.NewScrubber(jwtSecret, smtpPassword)
	ev := sentry.NewEvent()
	ev.Message = "login failed password=" + userPassword
	ev.Transaction = "POST /api/auth/login"
	ev.Fingerprint = []string{"{{ default }}", accessToken}
	ev.Tags = map[string]string{"route": "POST /api/auth/login", "refresh_token": refreshToken, "note": "Bearer " + accessToken}
	ev.Contexts["fluxauth"] = map[string]any{"err": "smtp auth " + smtpPassword, "deviceToken": deviceToken,
		"body": map[string]any{"currentPassword": userPassword}}
	ev.Breadcrumbs = []*sentry.Breadcrumb{{Message: "nonce=abc123nonce seen", Data: map[string]any{"idToken": idToken, "ok": "yes"}}}
	ev.Exception = []sentry.Exception{{Type: "*errors.errorString", Value: "signing with " + jwtSecret,
		Mechanism:  &sentry.Mechanism{Type: "generic", Data: map[string]any{"secret": "s3cr3t-value"}},
		Stacktrace: &sentry.Stacktrace{Frames: []sentry.Frame{{Function: "f", Vars: map[string]any{"password": userPassword}}}}}}
	ev.Request = &sentry.Request{
		URL:         "https://auth.example.com/api/auth/login?password=" + userPassword + "&next=%2Fhome",
		Method:      "POST",
		Data:        `{"email":"ann@example.com","password":"` + userPassword + `","deviceToken":"` + deviceToken + `"}`,
		QueryString: "refreshToken=" + refreshToken + "&page=2",
		Cookies:     "fluxauth_refresh=" + refreshToken,
		Headers: map[string]string{"Authorization": "Bearer " + accessToken, "Cookie": "a=" + legacyToken,
			"X-Device-Token": deviceToken, "User-Agent": "curl/8", "X-Custom": "id_token=" + idToken},
		Env: map[string]string{"FLUXAUTH_JWT_SECRET": jwtSecret, "REMOTE_ADDR": "203.0.113.9"},
	}
	ev.User = sentry.User{ID: "u-1", Email: "ann@example.com", Data: map[string]string{"token": legacyToken}}
	ev.Threads = []sentry.Thread{{Stacktrace: &sentry.Stacktrace{Frames: []sentry.Frame{{Vars: map[string]any{"nonce": "n0nce-v4lue"}}}}}}

	out, err := json.Marshal(s.Event(ev, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{userPassword, accessToken, refreshToken, legacyToken, deviceToken, idToken,
		jwtSecret, smtpPassword, "abc123nonce", "s3cr3t-value", "n0nce-v4lue"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%q survived in the event", secret)
		}
	}
	for _, keep := range []string{"POST /api/auth/login", "ann@example.com", "curl/8", "page=2", "203.0.113.9", "next=%2Fhome", `"ok":"yes"`} {
		if !strings.Contains(string(out), keep) {
			t.Errorf("lost %q", keep)
		}
	}
}
