package config

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/password"
)

// given is a lookup over fixed values, as cmd/fluxauth's flags and environment would answer.
func given(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(env string) (string, bool) {
		v, ok := m[env]
		return v, ok
	}
}

func TestDefaultIsWhatLoadGivesWithNothingConfigured(t *testing.T) {
	c, err := Load(given())
	if err != nil {
		t.Fatalf("the defaults do not load: %v", err)
	}
	d := Default()
	if d.Addr != c.Addr || d.Issuer != c.Issuer || d.SigningKeys != c.SigningKeys || d.Rules != c.Rules || d.Password != c.Password {
		t.Fatalf("Default() = %+v, Load with nothing set = %+v", d, c)
	}
	if d.Issuer != "fluxauth" || d.SigningKeys != "fluxauth-keys.json" {
		t.Fatalf("defaults: issuer %q, signing keys %q", d.Issuer, d.SigningKeys)
	}
}

func TestDefaultArgon2ParametersAreOWASPsRecommendation(t *testing.T) {
	// OWASP's Password Storage Cheat Sheet: argon2id with 19 MiB, 2 iterations, 1 degree of parallelism.
	if got, want := Default().Password, (password.Params{Memory: 19456, Time: 2, Threads: 1}); got != want {
		t.Fatalf("default argon2id parameters %+v, want %+v", got, want)
	}
}

func TestDerivedDefaultsYieldToGivenValues(t *testing.T) {
	c, err := Load(given("FLUXAUTH_ISSUER", "https://auth.example.com", "FLUXAUTH_SIGNING_KEYS", "/etc/keys.json",
		"FLUXAUTH_DATABASE_URL", "sqlite:/var/lib/fluxauth/db"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://auth.example.com" || c.SigningKeys != "/etc/keys.json" {
		t.Fatalf("issuer %q, signing keys %q", c.Issuer, c.SigningKeys)
	}
	c, err = Load(given("FLUXAUTH_DATABASE_URL", "sqlite:/var/lib/fluxauth/db"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SigningKeys != "/var/lib/fluxauth/fluxauth-keys.json" {
		t.Fatalf("signing keys %q, want the file beside the database", c.SigningKeys)
	}
}

func TestEverySettingHasItsOwnVariableAndFlag(t *testing.T) {
	if got := (Setting{Env: "FLUXAUTH_RATE_LOGIN_IP_EMAIL"}).Flag(); got != "rate-login-ip-email" {
		t.Fatalf("flag of FLUXAUTH_RATE_LOGIN_IP_EMAIL = %q", got)
	}
	seen := map[string]bool{}
	for _, s := range Settings() {
		if !strings.HasPrefix(s.Env, "FLUXAUTH_") || s.Help == "" || s.parse == nil {
			t.Errorf("setting %+v: want a FLUXAUTH_ name, help text and a parser", s)
		}
		if s.Default != "" && s.DerivedDefault != "" {
			t.Errorf("%s has both a default and a derived default", s.Env)
		}
		if seen[s.Env] || seen[s.Flag()] {
			t.Errorf("%s appears twice", s.Env)
		}
		seen[s.Env], seen[s.Flag()] = true, true
	}
}

// docs/configuration.md's table is what operators read: it must list every setting, and nothing
// else, with the default the code uses. Its "meaning" column is free prose.
func TestConfigurationDocTableMatchesTheSettings(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := docConfigRows(t, string(doc))
	for _, s := range Settings() {
		cell, ok := rows[s.Env]
		if !ok {
			t.Errorf("docs/configuration.md's configuration table has no row for %s", s.Env)
			continue
		}
		delete(rows, s.Env)
		if want, ok := docDefaultMatches(s, cell); !ok {
			t.Errorf("docs/configuration.md: %s default is %q, want %s", s.Env, cell, want)
		}
	}
	for env := range rows {
		t.Errorf("docs/configuration.md's configuration table lists %s, which is not a setting", env)
	}
}

// docConfigRows returns the default cell of each row of the table of docs/configuration.md.
func docConfigRows(tb testing.TB, readme string) map[string]string {
	tb.Helper()
	_, section, ok := strings.Cut(readme, "# Configuration\n")
	if !ok {
		tb.Fatal(`docs/configuration.md has no "# Configuration" heading`)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `FLUXAUTH_") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 3 {
			tb.Fatalf("docs/configuration.md row with %d cells, want variable | default | meaning: %s", len(cells), line)
		}
		env := strings.Trim(cells[0], "`")
		if _, dup := rows[env]; dup {
			tb.Errorf("docs/configuration.md lists %s twice", env)
		}
		rows[env] = cells[1]
	}
	if len(rows) == 0 {
		tb.Fatal("docs/configuration.md's configuration table has no FLUXAUTH_ rows")
	}
	return rows
}

// docDefaultMatches reports whether a docs/configuration.md default cell says s's default: the value in code
// font (optionally followed by a remark, as in "`0` (one per CPU)"), "*(empty…)*" for an empty
// default, or the derived default's description.
func docDefaultMatches(s Setting, cell string) (want string, ok bool) {
	switch {
	case s.DerivedDefault != "":
		plain := strings.NewReplacer("`", "", "*", "").Replace(cell)
		return "“" + s.DerivedDefault + "”", plain == s.DerivedDefault
	case s.Default == "":
		return "*(empty…)*", strings.HasPrefix(cell, "*(empty")
	default:
		code := "`" + s.Default + "`"
		return code, cell == code || strings.HasPrefix(cell, code+" ")
	}
}

// With HS256 every holder of the shared secret can sign any sub and sid, so the session owner check
// is on; ES256 tokens are fluxauth's alone, and the check is spared.
func TestTheSessionOwnerCheckFollowsTheSigningAlgorithm(t *testing.T) {
	c, err := Load(given("FLUXAUTH_JWT_ALG", "HS256", "FLUXAUTH_JWT_SECRET", strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Account.CheckSessionOwner {
		t.Fatal("HS256 without the session owner check")
	}
	if Default().Account.CheckSessionOwner {
		t.Fatal("ES256 (the default) with the session owner check")
	}
}

// FLUXAUTH_DEBUG_ADDR stays for one release as an alias of FLUXAUTH_INTERNAL_ADDR, with a warning.
func TestTheDebugAddressIsADeprecatedAliasOfTheInternalAddress(t *testing.T) {
	if c := Default(); c.InternalAddr != "" || len(c.Warnings) != 0 {
		t.Fatalf("by default: internal address %q, warnings %q", c.InternalAddr, c.Warnings)
	}
	c, err := Load(given("FLUXAUTH_DEBUG_ADDR", "127.0.0.1:6060"))
	if err != nil {
		t.Fatal(err)
	}
	if c.InternalAddr != "127.0.0.1:6060" || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "FLUXAUTH_INTERNAL_ADDR") {
		t.Fatalf("internal address %q, warnings %q", c.InternalAddr, c.Warnings)
	}
	c, err = Load(given("FLUXAUTH_INTERNAL_ADDR", "127.0.0.1:9090"))
	if err != nil || c.InternalAddr != "127.0.0.1:9090" || len(c.Warnings) != 0 {
		t.Fatalf("internal address %q, warnings %q, %v", c.InternalAddr, c.Warnings, err)
	}
	_, err = Load(given("FLUXAUTH_INTERNAL_ADDR", "127.0.0.1:9090", "FLUXAUTH_DEBUG_ADDR", "127.0.0.1:6060"))
	if err == nil || !strings.Contains(err.Error(), "FLUXAUTH_DEBUG_ADDR") {
		t.Fatalf("two different addresses: %v", err)
	}
}

func TestAlertSettingsAreCheckedAndTheWebhookURLIsNeverEchoed(t *testing.T) {
	_, err := Load(given("FLUXAUTH_SENTRY_DSN", "sentry.example.com/42", "FLUXAUTH_SENTRY_ENVIRONMENT", "a/b",
		"FLUXAUTH_ALERT_FAILED_LOGINS", "50/5m:60", "FLUXAUTH_ALERT_RATE_LIMITED", "200/1ms",
		"FLUXAUTH_ALERT_WEBHOOK_URL", "ftp://hooks.example.com/services/T0KEN"))
	if err == nil {
		t.Fatal("bad alert settings accepted")
	}
	for _, env := range []string{"FLUXAUTH_SENTRY_DSN", "FLUXAUTH_SENTRY_ENVIRONMENT", "FLUXAUTH_ALERT_FAILED_LOGINS",
		"FLUXAUTH_ALERT_RATE_LIMITED", "FLUXAUTH_ALERT_WEBHOOK_URL"} {
		if !strings.Contains(err.Error(), env) {
			t.Errorf("the error does not name %s: %v", env, err)
		}
	}
	if strings.Contains(err.Error(), "T0KEN") {
		t.Errorf("the webhook URL, which holds its token, was echoed: %v", err)
	}
	c, err := Load(given("FLUXAUTH_SENTRY_DSN", "https://abc123@o1.ingest.sentry.io/42", "FLUXAUTH_ALERT_FAILED_LOGINS", "off",
		"FLUXAUTH_ALERT_RATE_LIMITED", "1000/1h", "FLUXAUTH_ALERT_WEBHOOK_URL", "https://hooks.example.com/services/T0KEN"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SentryDSN != "https://abc123@o1.ingest.sentry.io/42" || c.SentryEnvironment != "production" || !c.Alerts.FailedLogins.IsZero() ||
		c.Alerts.RateLimited.String() != "1000/1h" || c.AlertWebhookURL != "https://hooks.example.com/services/T0KEN" {
		t.Fatalf("loaded %+v", c)
	}
}

// The configuration is read before any server exists and knows nothing of HTTP: neither it nor
// anything it imports is the api package (trusted proxies and CORS origins come from netaddr).
func TestConfigDoesNotDependOnTheHTTPPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/fluxstudio/fluxauth/api" {
			t.Fatalf("internal/config depends on %s", dep)
		}
	}
}

// The legacy token exchange needs its end, must not share fluxauth's own HS256 secret, and never
// echoes the legacy secret.
func TestTheLegacyExchangeSettingsAreChecked(t *testing.T) {
	const legacy = "the-legacy-apps-jwt-secret"
	c, err := Load(given("FLUXAUTH_LEGACY_JWT_SECRET", legacy, "FLUXAUTH_LEGACY_JWT_UNTIL", "2027-03-01T00:00:00Z",
		"FLUXAUTH_LEGACY_JWT_USER_CLAIM", "userId", "FLUXAUTH_LEGACY_JWT_MAX_AGE", "168h"))
	if err != nil {
		t.Fatal(err)
	}
	want := LegacySettings{Secret: legacy, UserClaim: "userId", Until: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), MaxAge: 168 * time.Hour}
	if !c.Legacy.Enabled() || c.Legacy.Secret != want.Secret || c.Legacy.UserClaim != want.UserClaim || !c.Legacy.Until.Equal(want.Until) || c.Legacy.MaxAge != want.MaxAge {
		t.Fatalf("loaded %+v, want %+v", c.Legacy, want)
	}
	if d := Default().Legacy; d.Enabled() || d.UserClaim != "id" || d.MaxAge != 30*24*time.Hour || !d.Until.IsZero() {
		t.Fatalf("by default: %+v, want off, claim id, max age 30 days", d)
	}
	for _, tc := range []struct {
		name  string
		env   []string
		names string
	}{
		{"a secret without its end", []string{"FLUXAUTH_LEGACY_JWT_SECRET", legacy}, "FLUXAUTH_LEGACY_JWT_UNTIL"},
		{"an end without a secret", []string{"FLUXAUTH_LEGACY_JWT_UNTIL", "2027-03-01T00:00:00Z"}, "FLUXAUTH_LEGACY_JWT_UNTIL"},
		{"an end that is no RFC 3339 time", []string{"FLUXAUTH_LEGACY_JWT_SECRET", legacy, "FLUXAUTH_LEGACY_JWT_UNTIL", "2027-03-01"}, "FLUXAUTH_LEGACY_JWT_UNTIL"},
		{"fluxauth's own HS256 secret", []string{"FLUXAUTH_JWT_ALG", "HS256", "FLUXAUTH_JWT_SECRET", legacy + "-and-32-bytes-long",
			"FLUXAUTH_LEGACY_JWT_SECRET", legacy + "-and-32-bytes-long", "FLUXAUTH_LEGACY_JWT_UNTIL", "2027-03-01T00:00:00Z"}, "FLUXAUTH_LEGACY_JWT_SECRET"},
		{"an empty claim", []string{"FLUXAUTH_LEGACY_JWT_USER_CLAIM", " "}, "FLUXAUTH_LEGACY_JWT_USER_CLAIM"},
		{"a max age of days", []string{"FLUXAUTH_LEGACY_JWT_MAX_AGE", "30d"}, "FLUXAUTH_LEGACY_JWT_MAX_AGE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(given(tc.env...))
			if err == nil || !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("Load = %v, want an error naming %s", err, tc.names)
			}
			if strings.Contains(err.Error(), legacy) {
				t.Fatalf("the error echoes the legacy secret: %v", err)
			}
		})
	}
}
