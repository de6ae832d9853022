package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/password"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// Config is everything fluxauth reads from its environment and flags. Only this package reads it;
// components get plain fields.
type Config struct {
	Addr            string
	DatabaseURL     string
	RedisURL        string
	Issuer          string
	Audience        string
	LogLevel        string
	LogFormat       string
	AccessTTL       time.Duration
	RefreshTTL      time.Duration
	SessionMaxAge   time.Duration
	RefreshGrace    time.Duration
	JWTAlg          string
	JWTSecret       string
	SigningKeys     string
	SignupUserTypes []string
	TrustedProxies  *api.ProxyList
	Argon2Memory    uint32
	Argon2Time      uint32
	Argon2Threads   uint8
	HashWorkers     int
	ShutdownTimeout time.Duration
	DebugAddr       string

	GoogleClientIDs []string
	AppleClientIDs  []string
	GoogleIssuer    string
	AppleIssuer     string

	Rules                 ratelimit.Rules
	SuspiciousRefreshRate ratelimit.Limit
	FingerprintRevoke     bool
	RedisTimeout          time.Duration
	RevocationCacheTTL    time.Duration

	TokenRetention time.Duration
	EventRetention time.Duration
	CleanupAt      string // "HH:MM" UTC, or "off"
	CleanupBatch   int
}

// setting is one configuration variable: its environment name, its flag, its default and how to
// parse it into Config.
type setting struct {
	env, flag, def, help string
	parse                func(c *Config, v string) error
}

var settings = []setting{
	{"FLUXAUTH_ADDR", "addr", "127.0.0.1:8080", "address to listen on (host:port)", func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("must be host:port, e.g. 127.0.0.1:8080 or :8080")
		}
		c.Addr = v
		return nil
	}},
	{"FLUXAUTH_DATABASE_URL", "database-url", "sqlite:./fluxauth.db", "sqlite:PATH for embedded SQLite, postgres://… for PostgreSQL", func(c *Config, v string) error {
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
	{"FLUXAUTH_REDIS_URL", "redis-url", "", "redis://… for rate limits and revocations shared by all instances; empty keeps them in process", func(c *Config, v string) error {
		if v != "" && !strings.HasPrefix(v, "redis://") && !strings.HasPrefix(v, "rediss://") {
			return fmt.Errorf("must start with redis:// or rediss://")
		}
		c.RedisURL = v
		return nil
	}},
	{"FLUXAUTH_ISSUER", "issuer", "", "the public URL of this service, used as the JWT iss (default: http:// + FLUXAUTH_ADDR)", func(c *Config, v string) error {
		if v != "" {
			if u, err := url.Parse(v); err != nil || u.Scheme == "" || u.Host == "" {
				return fmt.Errorf("must be an absolute URL such as https://auth.example.com")
			}
		}
		c.Issuer = v
		return nil
	}},
	{"FLUXAUTH_AUDIENCE", "audience", "fluxstudio", "the JWT aud of access tokens", func(c *Config, v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("must not be empty")
		}
		c.Audience = v
		return nil
	}},
	{"FLUXAUTH_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", func(c *Config, v string) error {
		return oneOf(&c.LogLevel, v, "debug", "info", "warn", "error")
	}},
	{"FLUXAUTH_LOG_FORMAT", "log-format", "text", "text or json", func(c *Config, v string) error {
		return oneOf(&c.LogFormat, v, "text", "json")
	}},
	{"FLUXAUTH_ACCESS_TTL", "access-ttl", "15m", "lifetime of an access token (1m to 24h)", durationIn(func(c *Config) *time.Duration { return &c.AccessTTL }, time.Minute, 24*time.Hour)},
	{"FLUXAUTH_REFRESH_TTL", "refresh-ttl", "168h", "lifetime of a refresh token, extended on each use", durationIn(func(c *Config) *time.Duration { return &c.RefreshTTL }, time.Minute, 8760*time.Hour)},
	{"FLUXAUTH_SESSION_MAX_AGE", "session-max-age", "720h", "absolute limit of a session from sign-in", durationIn(func(c *Config) *time.Duration { return &c.SessionMaxAge }, time.Minute, 8760*time.Hour)},
	{"FLUXAUTH_REFRESH_GRACE", "refresh-grace", "10s", "how long a just-spent refresh token still works (concurrent tabs)", durationIn(func(c *Config) *time.Duration { return &c.RefreshGrace }, 0, 5*time.Minute)},
	{"FLUXAUTH_JWT_ALG", "jwt-alg", "ES256", "ES256 (keys, JWKS) or HS256 (shared secret for legacy verifiers)", func(c *Config, v string) error {
		return oneOf(&c.JWTAlg, strings.ToUpper(v), "ES256", "HS256")
	}},
	{"FLUXAUTH_JWT_SECRET", "jwt-secret", "", "the HS256 secret, at least 32 bytes; required when FLUXAUTH_JWT_ALG=HS256", func(c *Config, v string) error {
		c.JWTSecret = v
		return nil
	}},
	{"FLUXAUTH_SIGNING_KEYS", "signing-keys", "", "the key file shared by every instance: ES256 signing keys and the refresh-token secret, needed in HS256 mode too (default: fluxauth-keys.json beside the SQLite database; required with PostgreSQL)", func(c *Config, v string) error {
		c.SigningKeys = v
		return nil
	}},
	{"FLUXAUTH_SIGNUP_USER_TYPES", "signup-user-types", "client,designer", "the user types a client may choose at signup (never admin)", func(c *Config, v string) error {
		c.SignupUserTypes = nil
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if t == "admin" {
				return fmt.Errorf("admin can never be self-assigned")
			}
			c.SignupUserTypes = append(c.SignupUserTypes, t)
		}
		if len(c.SignupUserTypes) == 0 {
			return fmt.Errorf("must list at least one user type")
		}
		return nil
	}},
	{"FLUXAUTH_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is believed", func(c *Config, v string) error {
		pl, err := api.ParseProxyList(v)
		c.TrustedProxies = pl
		return err
	}},
	{"FLUXAUTH_ARGON2_MEMORY", "argon2-memory", "19456", "argon2id memory in KiB (OWASP: 19456)", uintIn(func(c *Config, n uint64) { c.Argon2Memory = uint32(n) }, 8192, 4<<20)},
	{"FLUXAUTH_ARGON2_TIME", "argon2-time", "2", "argon2id iterations", uintIn(func(c *Config, n uint64) { c.Argon2Time = uint32(n) }, 1, 100)},
	{"FLUXAUTH_ARGON2_THREADS", "argon2-threads", "1", "argon2id parallelism", uintIn(func(c *Config, n uint64) { c.Argon2Threads = uint8(n) }, 1, 64)},
	{"FLUXAUTH_HASH_WORKERS", "hash-workers", "0", "password hashes computed at once (0 = one per CPU)", uintIn(func(c *Config, n uint64) { c.HashWorkers = int(n) }, 0, 1024)},
	{"FLUXAUTH_GOOGLE_CLIENT_IDS", "google-client-ids", "", "comma-separated Google OAuth client ids (web, iOS, Android) accepted as aud; empty disables Google sign-in", func(c *Config, v string) error {
		c.GoogleClientIDs = splitList(v)
		return nil
	}},
	{"FLUXAUTH_APPLE_CLIENT_IDS", "apple-client-ids", "", "comma-separated Apple service/bundle ids accepted as aud; empty disables Apple sign-in", func(c *Config, v string) error {
		c.AppleClientIDs = splitList(v)
		return nil
	}},
	{"FLUXAUTH_GOOGLE_ISSUER", "google-issuer", "https://accounts.google.com", "Google's OIDC issuer (discovery and keys are fetched from it)", absoluteURL(func(c *Config) *string { return &c.GoogleIssuer })},
	{"FLUXAUTH_APPLE_ISSUER", "apple-issuer", "https://appleid.apple.com", "Apple's OIDC issuer", absoluteURL(func(c *Config) *string { return &c.AppleIssuer })},
	{"FLUXAUTH_RATE_LOGIN_IP_EMAIL", "rate-login-ip-email", "5/1m", "login attempts per client IP and email (RATE/PERIOD[:BURST], or off)", limit(func(c *Config) *ratelimit.Limit { return &c.Rules.LoginIPEmail })},
	{"FLUXAUTH_RATE_LOGIN_IP", "rate-login-ip", "20/1m", "login attempts per client IP", limit(func(c *Config) *ratelimit.Limit { return &c.Rules.LoginIP })},
	{"FLUXAUTH_RATE_SIGNUP_IP", "rate-signup-ip", "5/1h", "signups per client IP", limit(func(c *Config) *ratelimit.Limit { return &c.Rules.Signup })},
	{"FLUXAUTH_RATE_REFRESH_SESSION", "rate-refresh-session", "60/1m", "refreshes per session", limit(func(c *Config) *ratelimit.Limit { return &c.Rules.RefreshSession })},
	{"FLUXAUTH_RATE_REFRESH_IP", "rate-refresh-ip", "300/1m", "refreshes per client IP", limit(func(c *Config) *ratelimit.Limit { return &c.Rules.RefreshIP })},
	{"FLUXAUTH_RATE_IDTOKEN_IP", "rate-idtoken-ip", "20/1m", "Google/Apple sign-ins per client IP", limit(func(c *Config) *ratelimit.Limit { return &c.Rules.IDTokenIP })},
	{"FLUXAUTH_LOCKOUT", "lockout", "1/15m:10", "failed logins per account: 10 in a row lock it for 15 minutes; a success clears it", limit(func(c *Config) *ratelimit.Limit { return &c.Rules.Lockout })},
	{"FLUXAUTH_SUSPICIOUS_REFRESH_RATE", "suspicious-refresh-rate", "10/1m", "a refresh sooner after the session's previous one than this rate allows records suspicious_token_usage", limit(func(c *Config) *ratelimit.Limit { return &c.SuspiciousRefreshRate })},
	{"FLUXAUTH_FINGERPRINT_MISMATCH", "fingerprint-mismatch", "revoke", "revoke (end the session) or record, when a refresh presents another device fingerprint", func(c *Config, v string) error {
		var p string
		err := oneOf(&p, v, "revoke", "record")
		c.FingerprintRevoke = p == "revoke"
		return err
	}},
	{"FLUXAUTH_REDIS_TIMEOUT", "redis-timeout", "25ms", "how long a rate-limit check waits for Redis before the in-process limiter answers", durationIn(func(c *Config) *time.Duration { return &c.RedisTimeout }, time.Millisecond, 10*time.Second)},
	{"FLUXAUTH_REVOCATION_CACHE_TTL", "revocation-cache-ttl", "500ms", "without Redis, how long an instance trusts its last look at a session's revocation", durationIn(func(c *Config) *time.Duration { return &c.RevocationCacheTTL }, 0, time.Second)},
	{"FLUXAUTH_TOKEN_RETENTION", "token-retention", "168h", "how long expired or revoked refresh tokens are kept (forensics) before cleanup deletes them", durationIn(func(c *Config) *time.Duration { return &c.TokenRetention }, 0, 87600*time.Hour)},
	{"FLUXAUTH_EVENT_RETENTION", "event-retention", "2160h", "how long security events are kept", durationIn(func(c *Config) *time.Duration { return &c.EventRetention }, time.Hour, 87600*time.Hour)},
	{"FLUXAUTH_CLEANUP_AT", "cleanup-at", "03:00", "daily cleanup time (HH:MM, UTC) inside serve; off disables it", func(c *Config, v string) error {
		if v != "off" {
			if _, err := time.Parse("15:04", v); err != nil {
				return fmt.Errorf("must be HH:MM (UTC) or off")
			}
		}
		c.CleanupAt = v
		return nil
	}},
	{"FLUXAUTH_CLEANUP_BATCH", "cleanup-batch", "10000", "rows deleted per statement by cleanup", uintIn(func(c *Config, n uint64) { c.CleanupBatch = int(n) }, 1, 1000000)},
	{"FLUXAUTH_DEBUG_ADDR", "debug-addr", "", "address of a separate listener for Go's pprof profiles (e.g. 127.0.0.1:6060); empty disables it. Never expose it publicly", func(c *Config, v string) error {
		if v != "" {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("must be host:port, e.g. 127.0.0.1:6060")
			}
		}
		c.DebugAddr = v
		return nil
	}},
	{"FLUXAUTH_SHUTDOWN_TIMEOUT", "shutdown-timeout", "15s", "how long graceful shutdown waits for in-flight requests", durationIn(func(c *Config) *time.Duration { return &c.ShutdownTimeout }, 0, 10*time.Minute)},
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

// registerFlags adds a flag for every setting to fs; the returned map holds the values of the flags
// that were given.
func registerFlags(fs *flag.FlagSet) map[string]*string {
	given := map[string]*string{}
	for _, s := range settings {
		s := s
		fs.Func(s.flag, s.help+" ("+s.env+")", func(v string) error {
			given[s.env] = &v
			return nil
		})
	}
	return given
}

// loadConfig resolves every setting (flag, else environment, else default), validates them all and
// reports every problem at once, each naming its variable.
func loadConfig(given map[string]*string, getenv func(string) string) (*Config, error) {
	c := &Config{}
	var problems []string
	for _, s := range settings {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		if f, ok := given[s.env]; ok {
			v = *f
		}
		if err := s.parse(c, strings.TrimSpace(v)); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", s.env, redactValue(s.env, v), err))
		}
	}
	problems = append(problems, c.crossCheck()...)
	if len(problems) > 0 {
		return nil, errors.New("invalid configuration:\n  " + strings.Join(problems, "\n  "))
	}
	return c, nil
}

// redactValue keeps secrets out of error messages.
func redactValue(env, v string) string {
	if env == "FLUXAUTH_JWT_SECRET" {
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

// crossCheck validates rules that span several settings.
func (c *Config) crossCheck() []string {
	var p []string
	if c.JWTAlg == "HS256" && len(c.JWTSecret) < 32 {
		p = append(p, "FLUXAUTH_JWT_SECRET: must be at least 32 bytes when FLUXAUTH_JWT_ALG=HS256")
	}
	if c.SigningKeys == "" && c.DatabaseURL != "" && !c.sqlite() {
		p = append(p, "FLUXAUTH_SIGNING_KEYS: required with PostgreSQL so every instance signs and derives refresh tokens with the same keys (create one with: fluxauth keys rotate --signing-keys PATH)")
	}
	if c.SessionMaxAge != 0 && c.RefreshTTL > c.SessionMaxAge {
		p = append(p, "FLUXAUTH_REFRESH_TTL: must not exceed FLUXAUTH_SESSION_MAX_AGE")
	}
	if c.Argon2Memory != 0 {
		if err := (password.Params{Memory: c.Argon2Memory, Time: c.Argon2Time, Threads: c.Argon2Threads}).Validate(); err != nil {
			p = append(p, "FLUXAUTH_ARGON2_MEMORY/FLUXAUTH_ARGON2_TIME/FLUXAUTH_ARGON2_THREADS: "+err.Error())
		}
	}
	if c.Issuer == "" && c.Addr != "" {
		c.Issuer = "http://" + c.Addr
	}
	if c.SigningKeys == "" && c.sqlite() {
		c.SigningKeys = filepath.Join(filepath.Dir(c.sqlitePath()), "fluxauth-keys.json")
	}
	return p
}

func (c *Config) sqlite() bool { return strings.HasPrefix(c.DatabaseURL, "sqlite:") }

func (c *Config) sqlitePath() string { return strings.TrimPrefix(c.DatabaseURL, "sqlite:") }
