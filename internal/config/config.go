// Package config is fluxauth's configuration: the one table of every FLUXAUTH_* variable with its
// flag, default and help text, and the validated Config built from it. It is the only place defaults
// are written; docs/configuration.md's table is checked against it, and tests that need the
// production defaults take them from Default.
//
// It never reads the process environment: cmd/fluxauth looks values up in its flags and environment
// and hands them to Load, and package app gives each component the plain fields it needs.
package config

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/alert"
	"github.com/fluxstudio/fluxauth/internal/netaddr"
	"github.com/fluxstudio/fluxauth/mail"
	"github.com/fluxstudio/fluxauth/password"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// DefaultIssuer is the JWT iss when FLUXAUTH_ISSUER is unset.
const DefaultIssuer = "fluxauth"

// Config is everything fluxauth is configured with. Where a component takes a configuration struct of
// its own (account.Config, password.Params, ratelimit.Rules), Config holds that struct, so the
// service and the tests that want production defaults hand the component the same value.
type Config struct {
	Addr            string
	DatabaseURL     string
	RedisURL        string
	Issuer          string
	Audience        string
	LogLevel        string
	LogFormat       string
	AccessTTL       time.Duration
	JWTAlg          string
	JWTSecret       string
	SigningKeys     string
	TrustedProxies  *netaddr.ProxyList
	Password        password.Params
	HashWorkers     int
	ShutdownTimeout time.Duration
	// InternalAddr is the internal listener's address (/metrics and pprof); empty: off.
	InternalAddr string
	// CORSOrigins are the browser origins whose pages may call the API.
	CORSOrigins []string

	// Legacy is the exchange of the legacy server's tokens; off while its Secret is empty.
	Legacy LegacySettings

	GoogleClientIDs []string
	AppleClientIDs  []string
	GoogleIssuer    string
	AppleIssuer     string

	Account            account.Config
	Rules              ratelimit.Rules
	RedisTimeout       time.Duration
	RevocationCacheTTL time.Duration

	// SentryDSN is where errors and alerts are reported; empty: nothing is sent.
	SentryDSN         string
	SentryEnvironment string
	// Alerts are the thresholds of the security alerts; AlertWebhookURL, when set, receives every alert.
	Alerts          alert.Thresholds
	AlertWebhookURL string

	// SMTP is FLUXAUTH_SMTP_URL: how mail goes out, if at all. MailFrom is the sender's address, and
	// Links the reset and verification links' templates and their tokens' lifetimes.
	SMTP     mail.SMTPSettings
	MailFrom string
	Links    mail.Links

	TokenRetention time.Duration
	EventRetention time.Duration
	CleanupAt      string // "HH:MM" UTC, or "off"
	CleanupBatch   int

	// Warnings are what the configuration got right but should change (a deprecated variable);
	// serve logs them at start.
	Warnings []string

	debugAddr string // FLUXAUTH_DEBUG_ADDR, the deprecated alias of InternalAddr
}

// LegacySettings are the FLUXAUTH_LEGACY_JWT_* variables.
type LegacySettings struct {
	Secret    string
	UserClaim string
	Until     time.Time
	MaxAge    time.Duration
}

// Enabled reports whether the exchange is configured.
func (l LegacySettings) Enabled() bool { return l.Secret != "" }

// Setting is one configuration variable.
type Setting struct {
	// Env is the environment variable; the flag of the same meaning is Flag().
	Env string
	// Default is the value used when the variable is not given.
	Default string
	// DerivedDefault describes, for a setting whose empty Default is filled in from other settings
	// (see deriveDefaults), the value it gets; documentation shows it instead of Default.
	DerivedDefault string
	// Help says what the setting does, for -h and docs/configuration.md.
	Help  string
	parse func(c *Config, v string) error
}

// Flag is the setting's command-line flag: the variable's name without FLUXAUTH_, lower-cased, with
// dashes (FLUXAUTH_LOG_LEVEL ↔ log-level).
func (s Setting) Flag() string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.Env, "FLUXAUTH_")), "_", "-")
}

// Usage is the flag's help text: Help, the variable and the default.
func (s Setting) Usage() string {
	def := s.DerivedDefault
	if def == "" && s.Default != "" {
		def = s.Default
	}
	if def == "" {
		return s.Help + " (" + s.Env + ")"
	}
	return s.Help + " (" + s.Env + ", default " + def + ")"
}

// Settings returns every setting.
func Settings() []Setting { return slices.Clone(settings) }

// settings is the one place a default is written.
var settings = []Setting{
	{Env: "FLUXAUTH_ADDR", Default: "127.0.0.1:8080", Help: "address to listen on (host:port)", parse: func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("must be host:port, e.g. 127.0.0.1:8080 or :8080")
		}
		c.Addr = v
		return nil
	}},
	{Env: "FLUXAUTH_DATABASE_URL", Default: "sqlite:./fluxauth.db", Help: "sqlite:PATH for embedded SQLite, postgres://… for PostgreSQL", parse: func(c *Config, v string) error {
		switch {
		case strings.HasPrefix(v, "sqlite:"):
			if strings.TrimPrefix(v, "sqlite:") == "" {
				return fmt.Errorf("sqlite: needs a file path, e.g. sqlite:./fluxauth.db")
			}
		case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
			if _, err := url.Parse(v); err != nil {
				return fmt.Errorf("is not a valid postgres:// URL")
			}
		default:
			return fmt.Errorf("must start with sqlite: or postgres://")
		}
		c.DatabaseURL = v
		return nil
	}},
	{Env: "FLUXAUTH_REDIS_URL", Help: "redis://… for rate limits and revocations shared by all instances; empty keeps them in process", parse: func(c *Config, v string) error {
		if v != "" && !strings.HasPrefix(v, "redis://") && !strings.HasPrefix(v, "rediss://") {
			return fmt.Errorf("must start with redis:// or rediss://")
		}
		c.RedisURL = v
		return nil
	}},
	// The default is a fixed name, not derived from the listener: tokens must stay valid when the
	// service restarts on another port or address.
	{Env: "FLUXAUTH_ISSUER", Default: DefaultIssuer, Help: "the JWT iss: set it to the public URL of this service", parse: func(c *Config, v string) error {
		if strings.ContainsAny(v, " \t\r\n") || v == "" {
			return fmt.Errorf("must be a name or an absolute URL such as https://auth.example.com")
		}
		if strings.Contains(v, ":") {
			if u, err := url.Parse(v); err != nil || u.Scheme == "" || u.Host == "" {
				return fmt.Errorf("must be a name or an absolute URL such as https://auth.example.com")
			}
		}
		c.Issuer = v
		return nil
	}},
	{Env: "FLUXAUTH_AUDIENCE", Default: "fluxstudio", Help: "the JWT aud of access tokens", parse: func(c *Config, v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("must not be empty")
		}
		c.Audience = v
		return nil
	}},
	{Env: "FLUXAUTH_LOG_LEVEL", Default: "info", Help: "debug, info, warn or error", parse: func(c *Config, v string) error {
		return oneOf(&c.LogLevel, v, "debug", "info", "warn", "error")
	}},
	{Env: "FLUXAUTH_LOG_FORMAT", Default: "text", Help: "text or json", parse: func(c *Config, v string) error {
		return oneOf(&c.LogFormat, v, "text", "json")
	}},
	{Env: "FLUXAUTH_ACCESS_TTL", Default: "15m", Help: "lifetime of an access token (1m to 24h)", parse: durationIn(func(c *Config) *time.Duration { return &c.AccessTTL }, time.Minute, 24*time.Hour)},
	{Env: "FLUXAUTH_REFRESH_TTL", Default: "168h", Help: "lifetime of a refresh token, extended on each use", parse: durationIn(func(c *Config) *time.Duration { return &c.Account.RefreshTTL }, time.Minute, 8760*time.Hour)},
	{Env: "FLUXAUTH_SESSION_MAX_AGE", Default: "720h", Help: "absolute limit of a session from sign-in", parse: durationIn(func(c *Config) *time.Duration { return &c.Account.SessionMaxAge }, time.Minute, 8760*time.Hour)},
	{Env: "FLUXAUTH_REFRESH_GRACE", Default: "10s", Help: "how long a just-spent refresh token still works (concurrent tabs)", parse: durationIn(func(c *Config) *time.Duration { return &c.Account.RefreshGrace }, 0, 5*time.Minute)},
	{Env: "FLUXAUTH_JWT_ALG", Default: "ES256", Help: "ES256 (keys, JWKS) or HS256 (shared secret for legacy verifiers)", parse: func(c *Config, v string) error {
		return oneOf(&c.JWTAlg, strings.ToUpper(v), "ES256", "HS256")
	}},
	{Env: "FLUXAUTH_JWT_SECRET", Help: "the HS256 secret, at least 32 bytes; required when FLUXAUTH_JWT_ALG=HS256", parse: func(c *Config, v string) error {
		c.JWTSecret = v
		return nil
	}},
	{Env: "FLUXAUTH_SIGNING_KEYS", DerivedDefault: "fluxauth-keys.json beside the SQLite file", Help: "the key file shared by every instance: ES256 signing keys and the refresh-token secret, needed in HS256 mode too; required with PostgreSQL", parse: func(c *Config, v string) error {
		c.SigningKeys = v
		return nil
	}},
	{Env: "FLUXAUTH_LEGACY_JWT_SECRET", Help: "the legacy server's JWT_SECRET: its HS256 tokens may be exchanged for sessions at POST /api/auth/legacy/exchange until FLUXAUTH_LEGACY_JWT_UNTIL; empty: the exchange is off. Never FLUXAUTH_JWT_SECRET", parse: func(c *Config, v string) error {
		c.Legacy.Secret = v
		return nil
	}},
	{Env: "FLUXAUTH_LEGACY_JWT_USER_CLAIM", Default: "id", Help: "the legacy tokens' claim holding the user ID (a string, or an integer compared as its decimal text)", parse: func(c *Config, v string) error {
		if v == "" || strings.ContainsAny(v, " \t\r\n") {
			return fmt.Errorf("must be a claim name such as id or userId")
		}
		c.Legacy.UserClaim = v
		return nil
	}},
	{Env: "FLUXAUTH_LEGACY_JWT_UNTIL", Help: "when the legacy token exchange ends (RFC 3339, e.g. 2027-03-01T00:00:00Z): required with FLUXAUTH_LEGACY_JWT_SECRET; from then on the route answers 404", parse: func(c *Config, v string) error {
		if v == "" {
			c.Legacy.Until = time.Time{}
			return nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fmt.Errorf("must be an RFC 3339 time such as 2027-03-01T00:00:00Z")
		}
		c.Legacy.Until = t
		return nil
	}},
	{Env: "FLUXAUTH_LEGACY_JWT_MAX_AGE", Default: "720h", Help: "how old, by iat, a legacy token without exp may be to be exchanged (720h = 30 days)", parse: durationIn(func(c *Config) *time.Duration { return &c.Legacy.MaxAge }, time.Minute, 87600*time.Hour)},
	{Env: "FLUXAUTH_SIGNUP_USER_TYPES", Default: "client,designer", Help: "the user types a client may choose at signup (never admin)", parse: func(c *Config, v string) error {
		c.Account.SignupUserTypes = nil
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if t == "admin" {
				return fmt.Errorf("admin can never be self-assigned")
			}
			c.Account.SignupUserTypes = append(c.Account.SignupUserTypes, t)
		}
		if len(c.Account.SignupUserTypes) == 0 {
			return fmt.Errorf("must list at least one user type")
		}
		return nil
	}},
	{Env: "FLUXAUTH_TRUSTED_PROXIES", Help: "comma-separated CIDRs of proxies whose X-Forwarded-For is believed", parse: func(c *Config, v string) error {
		pl, err := netaddr.ParseProxyList(v)
		c.TrustedProxies = pl
		return err
	}},
	{Env: "FLUXAUTH_CORS_ORIGINS", Help: "comma-separated exact origins (https://app.example.com) whose pages may call the API; empty answers no CORS request", parse: func(c *Config, v string) error {
		origins, err := netaddr.ParseOrigins(v)
		c.CORSOrigins = origins
		return err
	}},
	{Env: "FLUXAUTH_ARGON2_MEMORY", Default: "19456", Help: "argon2id memory in KiB (the defaults are OWASP's recommendation)", parse: uintIn(func(c *Config, n uint64) { c.Password.Memory = uint32(n) }, 8192, 4<<20)},
	{Env: "FLUXAUTH_ARGON2_TIME", Default: "2", Help: "argon2id iterations", parse: uintIn(func(c *Config, n uint64) { c.Password.Time = uint32(n) }, 1, 100)},
	{Env: "FLUXAUTH_ARGON2_THREADS", Default: "1", Help: "argon2id parallelism", parse: uintIn(func(c *Config, n uint64) { c.Password.Threads = uint8(n) }, 1, 64)},
	{Env: "FLUXAUTH_HASH_WORKERS", Default: "0", Help: "password hashes computed at once (0 = one per CPU)", parse: uintIn(func(c *Config, n uint64) { c.HashWorkers = int(n) }, 0, 1024)},
	{Env: "FLUXAUTH_GOOGLE_CLIENT_IDS", Help: "comma-separated Google OAuth client ids (web, iOS, Android) accepted as aud; empty disables Google sign-in", parse: func(c *Config, v string) error {
		c.GoogleClientIDs = splitList(v)
		return nil
	}},
	{Env: "FLUXAUTH_APPLE_CLIENT_IDS", Help: "comma-separated Apple service/bundle ids accepted as aud; empty disables Apple sign-in", parse: func(c *Config, v string) error {
		c.AppleClientIDs = splitList(v)
		return nil
	}},
	{Env: "FLUXAUTH_GOOGLE_ISSUER", Default: "https://accounts.google.com", Help: "Google's OIDC issuer (discovery and keys are fetched from it)", parse: absoluteURL(func(c *Config) *string { return &c.GoogleIssuer })},
	{Env: "FLUXAUTH_APPLE_ISSUER", Default: "https://appleid.apple.com", Help: "Apple's OIDC issuer", parse: absoluteURL(func(c *Config) *string { return &c.AppleIssuer })},
	{Env: "FLUXAUTH_RATE_LOGIN_IP_EMAIL", Default: "5/1m", Help: "login attempts per client IP and email (RATE/PERIOD[:BURST], or off)", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.LoginIPEmail })},
	{Env: "FLUXAUTH_RATE_LOGIN_IP", Default: "20/1m", Help: "login attempts per client IP", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.LoginIP })},
	{Env: "FLUXAUTH_RATE_SIGNUP_IP", Default: "5/1h", Help: "signups per client IP", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.Signup })},
	{Env: "FLUXAUTH_RATE_REFRESH_SESSION", Default: "60/1m", Help: "refreshes per session", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.RefreshSession })},
	{Env: "FLUXAUTH_RATE_REFRESH_IP", Default: "300/1m", Help: "refreshes per client IP", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.RefreshIP })},
	{Env: "FLUXAUTH_RATE_IDTOKEN_IP", Default: "20/1m", Help: "Google/Apple sign-ins per client IP", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.IDTokenIP })},
	{Env: "FLUXAUTH_RATE_LEGACY_IP", Default: "20/1m", Help: "exchanges of the legacy server's tokens per client IP", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.LegacyIP })},
	// NIST SP 800-63B allows up to 100 consecutive failed logins; the lockout is stricter because the
	// per-IP limits already throttle the slow path.
	{Env: "FLUXAUTH_LOCKOUT", Default: "1/15m:10", Help: "password-login attempts per account (per canonical address when no account has it), whatever the client IP; a correct password clears the count, except through a device token. The default: 10 failures in quick succession lock the account for 15 minutes, then one try every 15 minutes", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.Lockout })},
	{Env: "FLUXAUTH_DEVICE_TOKEN_TTL", Default: "2160h", Help: "how long a device token lives after it was issued or last let its device sign in; logins that carry a live one are counted on the token's own budget of 5 failures, not on the lockout", parse: durationIn(func(c *Config) *time.Duration { return &c.Account.DeviceTokenTTL }, time.Hour, 8760*time.Hour)},
	{Env: "FLUXAUTH_SUSPICIOUS_REFRESH_RATE", Default: "10/1m", Help: "a refresh sooner after the session's previous one than this rate allows records suspicious_token_usage", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Account.SuspiciousRefreshRate })},
	{Env: "FLUXAUTH_SUSPICIOUS_GRACE", Default: "on", Help: "on: a grace hit or reissue of a spent refresh token for another client than the one that rotated it (another User-Agent and another /24 or /64 network) records suspicious_token_usage, once per session and client; off: not recorded (a server-side renderer refreshing alongside the browser records one per session)", parse: func(c *Config, v string) error {
		var p string
		err := oneOf(&p, v, "on", "off")
		c.Account.WatchGraceClients = p == "on"
		return err
	}},
	{Env: "FLUXAUTH_FINGERPRINT_MISMATCH", Default: "revoke", Help: "revoke (end the session) or record, when a refresh presents another device fingerprint", parse: func(c *Config, v string) error {
		var p string
		err := oneOf(&p, v, "revoke", "record")
		c.Account.FingerprintRevoke = p == "revoke"
		return err
	}},
	{Env: "FLUXAUTH_REDIS_TIMEOUT", Default: "25ms", Help: "how long a rate-limit or revocation check waits for Redis before the in-process limiter or the database answers", parse: durationIn(func(c *Config) *time.Duration { return &c.RedisTimeout }, time.Millisecond, 10*time.Second)},
	{Env: "FLUXAUTH_REVOCATION_CACHE_TTL", Default: "500ms", Help: "how long an instance trusts its last database look at a session's revocation (without Redis, or while Redis cannot be believed)", parse: durationIn(func(c *Config) *time.Duration { return &c.RevocationCacheTTL }, 0, time.Second)},
	{Env: "FLUXAUTH_SMTP_URL", Help: "how mail (password reset, address verification) goes out: smtp://user:pass@host:587 (STARTTLS required; ?tls=none only for a loopback host), smtps://user:pass@host:465 (implicit TLS), or log: to write mails to the log (local development only); empty: no mail, and the flows that need it answer 503 mail_unavailable", parse: func(c *Config, v string) error {
		s, err := mail.ParseSMTPURL(v)
		c.SMTP = s
		return err
	}},
	{Env: "FLUXAUTH_MAIL_FROM", DerivedDefault: devMailFrom + " with log:, required with SMTP", Help: "the From of fluxauth's mails, e.g. FluxStudio <no-reply@fluxstudio.example>", parse: func(c *Config, v string) error {
		if v != "" {
			if _, err := netmail.ParseAddress(v); err != nil {
				return fmt.Errorf("must be an address such as FluxStudio <no-reply@fluxstudio.example>")
			}
		}
		c.MailFrom = v
		return nil
	}},
	{Env: "FLUXAUTH_RESET_URL", DerivedDefault: devResetURL + " with log:, required with SMTP", Help: "the app's page that sets a new password, with {token} where the reset mail's token goes", parse: linkTemplate(func(c *Config) *string { return &c.Links.ResetURL })},
	{Env: "FLUXAUTH_VERIFY_URL", DerivedDefault: devVerifyURL + " with log:, required with SMTP", Help: "the app's page that confirms an address, with {token} where the verification mail's token goes", parse: linkTemplate(func(c *Config) *string { return &c.Links.VerifyURL })},
	{Env: "FLUXAUTH_RESET_TTL", Default: "30m", Help: "how long a password-reset link works", parse: durationIn(func(c *Config) *time.Duration { return &c.Links.ResetTTL }, 5*time.Minute, 24*time.Hour)},
	{Env: "FLUXAUTH_VERIFY_TTL", Default: "48h", Help: "how long an address-verification link works", parse: durationIn(func(c *Config) *time.Duration { return &c.Links.VerifyTTL }, time.Hour, 720*time.Hour)},
	{Env: "FLUXAUTH_REQUIRE_VERIFIED_EMAIL", Default: "false", Help: "true: a password login with the right password answers 403 email_not_verified until the account's address is verified (needs mail)", parse: func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		c.Account.RequireVerifiedEmail = b
		return nil
	}},
	{Env: "FLUXAUTH_RATE_FORGOT_IP", Default: "10/1h", Help: "password-reset requests per client IP", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.ForgotIP })},
	{Env: "FLUXAUTH_RATE_FORGOT_EMAIL", Default: "3/1h", Help: "password-reset requests per address, from anywhere, whether or not an account has it", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.ForgotEmail })},
	{Env: "FLUXAUTH_RATE_RESET_IP", Default: "10/15m", Help: "password resets (new passwords sent with a reset link) per client IP", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.ResetIP })},
	{Env: "FLUXAUTH_RATE_VERIFY_RESEND", Default: "3/1h", Help: "verification mails one account may ask for again", parse: limit(func(c *Config) *ratelimit.Limit { return &c.Rules.VerifyResend })},
	{Env: "FLUXAUTH_TOKEN_RETENTION", Default: "168h", Help: "how long expired or revoked refresh tokens, expired or dead device and link tokens, and sent or abandoned mails are kept (forensics) before cleanup deletes them", parse: durationIn(func(c *Config) *time.Duration { return &c.TokenRetention }, 0, 87600*time.Hour)},
	{Env: "FLUXAUTH_EVENT_RETENTION", Default: "2160h", Help: "how long security events are kept", parse: durationIn(func(c *Config) *time.Duration { return &c.EventRetention }, time.Hour, 87600*time.Hour)},
	{Env: "FLUXAUTH_CLEANUP_AT", Default: "03:00", Help: "daily cleanup time (HH:MM, UTC) inside serve; off disables it", parse: func(c *Config, v string) error {
		if v != "off" {
			if _, err := time.Parse("15:04", v); err != nil {
				return fmt.Errorf("must be HH:MM (UTC) or off")
			}
		}
		c.CleanupAt = v
		return nil
	}},
	{Env: "FLUXAUTH_CLEANUP_BATCH", Default: "10000", Help: "rows deleted per statement by cleanup", parse: uintIn(func(c *Config, n uint64) { c.CleanupBatch = int(n) }, 1, 1000000)},
	{Env: "FLUXAUTH_INTERNAL_ADDR", Help: "address of the internal listener serving /metrics (Prometheus) and Go's pprof profiles, e.g. 127.0.0.1:9090; empty disables it. Never expose it publicly", parse: optionalAddr(func(c *Config) *string { return &c.InternalAddr })},
	{Env: "FLUXAUTH_DEBUG_ADDR", Help: "deprecated alias of FLUXAUTH_INTERNAL_ADDR, removed in the next release", parse: optionalAddr(func(c *Config) *string { return &c.debugAddr })},
	{Env: "FLUXAUTH_SENTRY_DSN", Help: "Sentry DSN (https://KEY@HOST/PROJECT): server errors, recovered panics, error-level log lines and security alerts are reported there, scrubbed of secrets; empty sends nothing", parse: func(c *Config, v string) error {
		if v != "" {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User.Username() == "" || strings.Trim(u.Path, "/") == "" {
				return fmt.Errorf("must be a Sentry DSN such as https://KEY@o1.ingest.sentry.io/PROJECT, or empty")
			}
		}
		c.SentryDSN = v
		return nil
	}},
	{Env: "FLUXAUTH_SENTRY_ENVIRONMENT", Default: "production", Help: "the environment Sentry events are labelled with", parse: func(c *Config, v string) error {
		if v == "" || strings.ContainsAny(v, "\r\n/") || len(v) > 64 {
			return fmt.Errorf("must be a name of at most 64 characters, without / or line breaks")
		}
		c.SentryEnvironment = v
		return nil
	}},
	{Env: "FLUXAUTH_ALERT_FAILED_LOGINS", Default: "50/5m", Help: "raise a security alert when this many failed logins (lockout refusals included) come from one IP, or are made against one account, within the period (COUNT/PERIOD, or off)", parse: threshold(func(c *Config) *ratelimit.Limit { return &c.Alerts.FailedLogins })},
	{Env: "FLUXAUTH_ALERT_RATE_LIMITED", Default: "200/5m", Help: "raise a security alert when this many requests from one IP are refused by rate limits (429) within the period (COUNT/PERIOD, or off)", parse: threshold(func(c *Config) *ratelimit.Limit { return &c.Alerts.RateLimited })},
	{Env: "FLUXAUTH_ALERT_WEBHOOK_URL", Help: "URL that receives every security alert as a JSON POST, Slack-compatible ({\"text\": …} plus an \"alert\" object), retried on failure; empty: off", parse: func(c *Config, v string) error {
		if v != "" {
			if err := alert.ValidWebhookURL(v); err != nil {
				return err
			}
		}
		c.AlertWebhookURL = v
		return nil
	}},
	{Env: "FLUXAUTH_SHUTDOWN_TIMEOUT", Default: "15s", Help: "how long graceful shutdown may take: in-flight requests get all of it but a reserve (a quarter, at most 2s) in which the security events they queued are written; events still unwritten at the end are counted in the log", parse: durationIn(func(c *Config) *time.Duration { return &c.ShutdownTimeout }, 0, 10*time.Minute)},
}

// The link and sender defaults with FLUXAUTH_SMTP_URL=log:, which only a developer reads: clearly
// local, so that nobody mistakes them for a deployment's.
const (
	devMailFrom  = "FluxStudio <no-reply@localhost>"
	devResetURL  = "http://localhost:3000/reset-password?token={token}"
	devVerifyURL = "http://localhost:3000/verify-email?token={token}"
)

// linkTemplate parses a mail link's template, which may be empty (then derived or required).
func linkTemplate(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			if err := mail.ValidLinkTemplate(v); err != nil {
				return err
			}
		}
		*field(c) = v
		return nil
	}
}

// optionalAddr parses a listener address that may be empty (off).
func optionalAddr(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("must be host:port, e.g. 127.0.0.1:9090, or empty")
			}
		}
		*field(c) = v
		return nil
	}
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func absoluteURL(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("must be an absolute http(s) URL")
		}
		*field(c) = v
		return nil
	}
}

func limit(field func(*Config) *ratelimit.Limit) func(*Config, string) error {
	return func(c *Config, v string) error {
		l, err := ratelimit.ParseLimit(v)
		if err != nil {
			return fmt.Errorf("must be RATE/PERIOD[:BURST] such as 5/1m or 10/1h:20, or off")
		}
		*field(c) = l
		return nil
	}
}

// threshold parses an alert threshold: COUNT/PERIOD (a limit without a burst), or off.
func threshold(field func(*Config) *ratelimit.Limit) func(*Config, string) error {
	return func(c *Config, v string) error {
		l, err := ratelimit.ParseLimit(v)
		if err != nil || l.Burst != 0 || (!l.IsZero() && (l.Period < time.Second || l.Period > 24*time.Hour)) {
			return fmt.Errorf("must be COUNT/PERIOD such as 50/5m, with a period from 1s to 24h, or off")
		}
		*field(c) = l
		return nil
	}
}

func oneOf(dst *string, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			*dst = v
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
}

func durationIn(field func(*Config) *time.Duration, min, max time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("must be a duration such as 15m or 168h")
		}
		if d < min || d > max {
			return fmt.Errorf("must be between %s and %s", min, max)
		}
		*field(c) = d
		return nil
	}
}

func uintIn(set func(*Config, uint64), min, max uint64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < min || n > max {
			return fmt.Errorf("must be a whole number from %d to %d", min, max)
		}
		set(c, n)
		return nil
	}
}

// Load builds the Config from lookup, which returns the value given for a variable (cmd/fluxauth
// decides from its flags and environment) and whether one was given; a variable not given takes its
// default. Every value is validated and every problem reported at once, each naming its variable.
func Load(lookup func(env string) (value string, ok bool)) (*Config, error) {
	c := &Config{}
	var problems []string
	for _, s := range settings {
		v := s.Default
		if given, ok := lookup(s.Env); ok {
			v = given
		}
		if err := s.parse(c, strings.TrimSpace(v)); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", s.Env, redactValue(s.Env, v), err))
		}
	}
	c.deriveDefaults()
	problems = append(problems, c.crossCheck()...)
	if len(problems) > 0 {
		return nil, errors.New("invalid configuration:\n  " + strings.Join(problems, "\n  "))
	}
	return c, nil
}

// Default returns the Config fluxauth runs with when nothing is configured: the production defaults.
// It panics if the table's defaults do not load, which the package's tests would catch first.
func Default() *Config {
	c, err := Load(func(string) (string, bool) { return "", false })
	if err != nil {
		panic("config: the defaults do not load: " + err.Error())
	}
	return c
}

// redactValue keeps secrets out of error messages.
func redactValue(env, v string) string {
	if env == "FLUXAUTH_JWT_SECRET" || env == "FLUXAUTH_LEGACY_JWT_SECRET" || env == "FLUXAUTH_ALERT_WEBHOOK_URL" { // a webhook URL holds its token
		return "[redacted]"
	}
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return v
}

// deriveDefaults fills in the settings whose default depends on others (each Setting with a
// DerivedDefault says which): they are left empty in the table and completed here.
func (c *Config) deriveDefaults() {
	if path, ok := c.SQLitePath(); ok && c.SigningKeys == "" {
		c.SigningKeys = filepath.Join(filepath.Dir(path), "fluxauth-keys.json")
	}
	if c.debugAddr != "" {
		c.Warnings = append(c.Warnings, "FLUXAUTH_DEBUG_ADDR is deprecated and will be removed in the next release: "+
			"set FLUXAUTH_INTERNAL_ADDR instead (the listener now serves /metrics too, which the public address no longer does)")
		if c.InternalAddr == "" {
			c.InternalAddr = c.debugAddr
		}
	}
	if c.SMTP.Mode == mail.ModeLog {
		for _, d := range []struct {
			field *string
			dev   string
		}{{&c.MailFrom, devMailFrom}, {&c.Links.ResetURL, devResetURL}, {&c.Links.VerifyURL, devVerifyURL}} {
			if *d.field == "" {
				*d.field = d.dev
			}
		}
		c.Warnings = append(c.Warnings, "FLUXAUTH_SMTP_URL=log: mails are written to the log, with their reset and verification links: for local development only")
	}
	// Only with the shared HS256 secret can another party sign a token for someone else's session;
	// ES256 tokens are signed by fluxauth alone, so the owner lookup is spared.
	c.Account.CheckSessionOwner = c.JWTAlg == "HS256"
}

// crossCheck reports the problems that span several settings. It only reads c.
func (c *Config) crossCheck() []string {
	var p []string
	if c.JWTAlg == "HS256" && len(c.JWTSecret) < 32 {
		p = append(p, "FLUXAUTH_JWT_SECRET: must be at least 32 bytes when FLUXAUTH_JWT_ALG=HS256")
	}
	if _, sqlite := c.SQLitePath(); c.SigningKeys == "" && c.DatabaseURL != "" && !sqlite {
		p = append(p, "FLUXAUTH_SIGNING_KEYS: required with PostgreSQL so every instance signs and derives refresh tokens with the same keys (create one with: fluxauth keys rotate --signing-keys PATH)")
	}
	if c.debugAddr != "" && c.InternalAddr != c.debugAddr {
		p = append(p, "FLUXAUTH_DEBUG_ADDR: a deprecated alias of FLUXAUTH_INTERNAL_ADDR, which is set to another address; set only FLUXAUTH_INTERNAL_ADDR")
	}
	if c.Account.SessionMaxAge != 0 && c.Account.RefreshTTL > c.Account.SessionMaxAge {
		p = append(p, "FLUXAUTH_REFRESH_TTL: must not exceed FLUXAUTH_SESSION_MAX_AGE")
	}
	if c.SMTP.Real() {
		for _, r := range []struct{ env, v string }{{"FLUXAUTH_MAIL_FROM", c.MailFrom}, {"FLUXAUTH_RESET_URL", c.Links.ResetURL}, {"FLUXAUTH_VERIFY_URL", c.Links.VerifyURL}} {
			if r.v == "" {
				p = append(p, r.env+": required when FLUXAUTH_SMTP_URL sends mail")
			}
		}
	}
	if c.Account.RequireVerifiedEmail && c.DatabaseURL != "" && !c.SMTP.Enabled() {
		p = append(p, "FLUXAUTH_REQUIRE_VERIFIED_EMAIL: needs mail (FLUXAUTH_SMTP_URL), or password users could never verify their address and sign in")
	}
	if c.Legacy.Enabled() {
		if c.Legacy.Until.IsZero() {
			p = append(p, "FLUXAUTH_LEGACY_JWT_UNTIL: required when FLUXAUTH_LEGACY_JWT_SECRET is set, so the legacy tokens stop being exchanged (an RFC 3339 time, after the old tokens' lifetime)")
		}
		if subtle.ConstantTimeCompare([]byte(c.Legacy.Secret), []byte(c.JWTSecret)) == 1 {
			p = append(p, "FLUXAUTH_LEGACY_JWT_SECRET: must not equal FLUXAUTH_JWT_SECRET: every service holding that secret could then mint tokens to exchange for anyone's session")
		}
	} else if !c.Legacy.Until.IsZero() {
		p = append(p, "FLUXAUTH_LEGACY_JWT_UNTIL: set without FLUXAUTH_LEGACY_JWT_SECRET, which turns the exchange on; set both, or neither")
	}
	if c.Password.Memory != 0 {
		if err := c.Password.Validate(); err != nil {
			p = append(p, "FLUXAUTH_ARGON2_MEMORY/FLUXAUTH_ARGON2_TIME/FLUXAUTH_ARGON2_THREADS: "+err.Error())
		}
	}
	return p
}

// SQLitePath returns the file of an embedded SQLite database, and false when the database is
// PostgreSQL.
func (c *Config) SQLitePath() (string, bool) { return strings.CutPrefix(c.DatabaseURL, "sqlite:") }
