// Package app builds the whole fluxauth service from its configuration and runs it: the store, the
// token issuer, the account rules, the audit recorder, the live feed, mail, alerts, metrics and the
// HTTP listeners, and every goroutine they need. "fluxauth serve" and every test server build it
// here, so tests run the wiring production runs; tests change only what Deps lets them inject.
package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/alert"
	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/cleanup"
	"github.com/fluxstudio/fluxauth/dashboard"
	"github.com/fluxstudio/fluxauth/feed"
	"github.com/fluxstudio/fluxauth/internal/breaker"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/mail"
	"github.com/fluxstudio/fluxauth/oidc"
	"github.com/fluxstudio/fluxauth/password"
	"github.com/fluxstudio/fluxauth/postgres"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/revocation"
	"github.com/fluxstudio/fluxauth/sqlite"
	"github.com/fluxstudio/fluxauth/token"
)

// Deps is what New takes from its caller rather than from the configuration: what the process
// provides (its version, its log output) and what tests inject in place of what production builds
// from cfg. Every field may be left zero, which means production's choice.
type Deps struct {
	// Version is the release reported to Sentry and the webhook and logged at start; "dev" when empty.
	Version string
	// Hostname names this instance in Sentry and the webhook; os.Hostname when empty.
	Hostname string
	// Clock is the service's time; fluxauth.SystemClock when nil.
	Clock fluxauth.Clock
	// Rand is the source of every token and key; crypto/rand when nil.
	Rand io.Reader
	// LogOutput receives the log, in cfg's level and format; os.Stderr when nil.
	LogOutput io.Writer

	// Store is an already-open, migrated store, which the App does not close; when nil, New opens
	// cfg.DatabaseURL, migrates it unless NoMigrate, and Run closes it at the end.
	Store     fluxauth.Backend
	NoMigrate bool // serve --no-migrate
	// Keys are the signing keys and the refresh and device secrets; when nil, cfg.SigningKeys' file
	// (created when missing).
	Keys *token.KeySet
	// Listener and InternalListener replace listening on cfg.Addr and cfg.InternalAddr; Run closes
	// them. An internal listener turns metrics on as cfg.InternalAddr does.
	Listener         net.Listener
	InternalListener net.Listener
	// HTTPClient fetches Google's and Apple's discovery documents and keys (from cfg.GoogleIssuer
	// and cfg.AppleIssuer); oidc's default when nil.
	HTTPClient *http.Client
	// Limiter replaces the rate limiter cfg describes (in process, or Redis behind its fallback).
	Limiter ratelimit.Limiter
	// WrapHasher, when set, wraps the password hasher the rules use (tests count its computations).
	WrapHasher func(account.Hasher) account.Hasher
	// RedisPrefix namespaces every Redis key; "fluxauth:" when empty. Tests sharing one Redis use
	// one each.
	RedisPrefix string
	// RateLimited, when set, is told the client IP of every 429 too, after the alert monitor.
	RateLimited func(ip string)

	// The pacing of the service's loops; zero values take each component's default.
	Audit           audit.Config
	Feed            feed.Config
	Heartbeat       time.Duration // an idle live stream's comment (api.DefaultHeartbeat)
	MailPoll        time.Duration // how often the mail sender looks for other instances' mails
	AlertCountEvery time.Duration // how often the alert monitor adds up its threshold counts
	WebhookBackoff  time.Duration // the alert webhook's first retry
	// HoldMail builds the mail sender but leaves it stopped: a test drains the outbox itself
	// (App.Mail.Drain), so no send runs beside the requests it measures.
	HoldMail bool
}

// App is the service, built by New and run by Run. Its exported fields are what it is made of, for
// tests to reach behind the API; they are set by New and must not be replaced.
type App struct {
	Clock    fluxauth.Clock
	Logger   *slog.Logger
	Store    fluxauth.Backend
	Accounts *account.Service
	Recorder *audit.Recorder
	Hub      *feed.Hub
	Limiter  ratelimit.Limiter
	// Mail is the outbox's sender; nil when mail is off.
	Mail *mail.Sender
	// Metrics are measured only when there is an internal listener to serve them; nil otherwise.
	Metrics *api.Metrics
	// Sentry and Webhook are the alert sinks; nil when not configured.
	Sentry  *alert.Sentry
	Webhook *alert.Webhook

	cfg              *config.Config
	deps             Deps
	version          string
	keys             *token.KeySet
	handler          http.Handler
	public           *http.Server
	publicLn         net.Listener
	internal         *http.Server
	internalLn       net.Listener
	redisRevocations *revocation.Redis
	alerts           *alerts
	// release closes, last first, what New opened and Run's shutdown does not: the clients and the
	// reporter. unstarted undoes, last first, what Run would have stopped, for an App never run.
	release   []func()
	unstarted []func()

	state runState
}

// New builds the service cfg describes, with deps, and opens its listeners; Run starts it. On an
// error nothing it opened is left open. Its log lines are serve's start-up: the configuration's
// warnings, the migrations applied, how mail will go out.
func New(ctx context.Context, cfg *config.Config, deps Deps) (_ *App, err error) {
	if deps.Clock == nil {
		deps.Clock = fluxauth.SystemClock{}
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	if deps.LogOutput == nil {
		deps.LogOutput = os.Stderr
	}
	if deps.RedisPrefix == "" {
		deps.RedisPrefix = "fluxauth:"
	}
	if deps.Hostname == "" {
		deps.Hostname, _ = os.Hostname()
	}
	a := &App{Clock: deps.Clock, cfg: cfg, deps: deps, version: deps.Version}
	if a.version == "" {
		a.version = "dev"
	}
	a.state.init()
	defer func() {
		if err != nil {
			a.discard()
		}
	}()
	clock := deps.Clock

	scrub := newScrubber(cfg)
	if a.Sentry, err = a.newReporter(scrub); err != nil {
		return nil, err
	}
	logger := NewLogger(cfg, deps.LogOutput, a.Sentry)
	a.Logger = logger
	a.onRelease(func() { closeReporter(a.Sentry, logger) })
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}

	db := deps.Store
	if db == nil {
		opened, err := openStore(ctx, cfg)
		if err != nil {
			return nil, err
		}
		a.onRelease(func() { closeWithin(logger, "database", opened.Close) })
		if !deps.NoMigrate {
			applied, err := opened.MigrateUp(ctx)
			if err != nil {
				return nil, err
			}
			for _, name := range applied {
				logger.Info("migration applied", "name", name)
			}
		}
		db = opened
	}
	a.Store = db

	keys := deps.Keys
	if keys == nil {
		if keys, err = loadKeys(cfg, clock, deps.Rand); err != nil {
			return nil, err
		}
	}
	a.keys = keys
	issuer, err := newIssuer(cfg, keys, clock, deps.Rand)
	if err != nil {
		return nil, err
	}
	hasher := password.New(cfg.Password, cfg.HashWorkers, deps.Rand)
	if err := calibrate(ctx, hasher, db, logger); err != nil {
		return nil, err
	}

	dbRevocations := revocation.NewDB(db, cfg.RevocationCacheTTL, clock)
	var revocations account.Revocations = dbRevocations
	var limiter ratelimit.Limiter = ratelimit.NewMemory(clock)
	var degraded func() []string
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("FLUXAUTH_REDIS_URL: %v", err)
		}
		// Timeouts are per call (the breaker's, FLUXAUTH_REDIS_TIMEOUT); a few idle connections
		// spare the first requests a cold dial.
		opts.ContextTimeoutEnabled = true
		opts.MinIdleConns = 4
		// go-redis has one logger per process: the last App built logs its dial errors.
		redis.SetLogger(redisLogger{logger})
		rdb := redis.NewClient(opts)
		a.onRelease(func() { rdb.Close() })
		// One resilience policy for every use of Redis: whichever call sees it fail first spares
		// the others the wait, and readiness reports one state.
		redisBreaker := breaker.New(breaker.Config{
			Name: "redis", Fallback: "rate limits are per instance and revocations are checked in the database",
			Timeout: cfg.RedisTimeout, Clock: clock, Logger: logger,
		})
		// Window: announceRevoked keeps a revocation for the access-token TTL plus the longest leeway,
		// so that is how long an access token from before a Redis data loss can still be presented.
		a.redisRevocations = revocation.NewRedis(rdb, dbRevocations, revocation.RedisConfig{
			Prefix: deps.RedisPrefix, Window: issuer.TTL() + token.MaxLeeway, Breaker: redisBreaker,
			Clock: clock, Logger: logger,
		})
		revocations = a.redisRevocations
		limiter = ratelimit.NewFallback(ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: deps.RedisPrefix + "rl:", Timeout: cfg.RedisTimeout}),
			limiter, redisBreaker)
		degraded = func() []string {
			if redisBreaker.Open() {
				return []string{"redis"}
			}
			return nil
		}
	}
	if deps.Limiter != nil {
		limiter = deps.Limiter
	}
	a.Limiter = limiter

	auditCfg := deps.Audit
	if auditCfg.Clock == nil {
		auditCfg.Clock = clock
	}
	a.Recorder = audit.New(db, logger, auditCfg)
	a.onUnstarted(func() { a.Recorder.Close(context.Background()) }) // writes what was recorded; Run starts the writer
	var passwords account.Hasher = hasher
	if deps.WrapHasher != nil {
		passwords = deps.WrapHasher(passwords)
	}
	accountCfg := cfg.Account
	var legacy *token.LegacyVerifier
	if cfg.Legacy.Enabled() {
		if legacy, err = token.NewLegacyVerifier(token.LegacyConfig{
			Secret: []byte(cfg.Legacy.Secret), UserClaim: cfg.Legacy.UserClaim, MaxAge: cfg.Legacy.MaxAge,
		}); err != nil {
			return nil, err
		}
		accountCfg.LegacyUntil = cfg.Legacy.Until
		logger.Info("the legacy server's tokens are exchanged at POST /api/auth/legacy/exchange", "until", cfg.Legacy.Until.UTC().Format(time.RFC3339))
	}
	a.Accounts = &account.Service{
		Store: db, Admin: db, Passwords: passwords, Tokens: issuer, Refreshes: keys.RefreshMinter(), Devices: keys.DeviceMinter(), Revocations: revocations,
		Events: a.Recorder, Clock: clock, Rand: deps.Rand, Logger: logger,
		Config: accountCfg, Limiter: limiter, Rules: cfg.Rules, Legacy: legacy,
		Providers: map[string]*oidc.Verifier{
			oidc.Google: oidc.NewVerifier(oidc.Google, oidc.Config{Issuer: cfg.GoogleIssuer, ClientIDs: cfg.GoogleClientIDs, HTTPClient: deps.HTTPClient, Clock: clock}),
			oidc.Apple:  oidc.NewVerifier(oidc.Apple, oidc.Config{Issuer: cfg.AppleIssuer, ClientIDs: cfg.AppleClientIDs, HTTPClient: deps.HTTPClient, Clock: clock}),
		},
	}
	if a.Mail = a.newMailSender(); a.Mail != nil {
		a.Accounts.Mail = a.Mail // only when set: a nil *mail.Sender would be a Notifier that is not nil
	}
	if a.alerts, err = a.newAlerts(scrub); err != nil {
		return nil, err
	}
	a.onRelease(a.alerts.stop) // on an early return; the shutdown stops them after draining the recorder
	// Metrics are measured only when the internal listener can serve them.
	if cfg.InternalAddr != "" || deps.InternalListener != nil {
		a.Metrics = api.NewMetrics()
		a.Metrics.ExportSetAside(a.Recorder.SetAside)
		a.Metrics.ExportSubscriberDrops("alerts", a.alerts.sub.Dropped)
	}
	// The dashboard's live feed: one reader of the audit log for every stream of this instance. Its
	// reaction to account_unlocked is how an unlock reaches every instance's own limiter.
	a.Hub = feed.New(db, clock, logger, deps.Feed)
	a.Hub.React(fluxauth.EventAccountUnlocked, a.Accounts.ClearLocalLockout)
	rateLimited := a.alerts.monitor.RateLimited
	if hook := deps.RateLimited; hook != nil {
		rateLimited = func(ip string) { a.alerts.monitor.RateLimited(ip); hook(ip) }
	}
	srv := &api.Server{Logger: logger, DB: db, Accounts: a.Accounts, Feed: a.Hub, Heartbeat: deps.Heartbeat,
		TrustedProxies: cfg.TrustedProxies, Degraded: degraded, Metrics: a.Metrics, CORSOrigins: cfg.CORSOrigins,
		RateLimited: rateLimited, Dashboard: dashboard.Handler()}
	a.handler = srv.Handler()

	if err := a.listen(); err != nil {
		return nil, err
	}
	return a, nil
}

// listen opens the public listener and, when configured, the internal one, and builds their servers.
func (a *App) listen() error {
	cfg, logger := a.cfg, a.Logger
	ln := a.deps.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("FLUXAUTH_ADDR: %v", err)
		}
	}
	a.publicLn = ln
	a.onUnstarted(func() { ln.Close() })
	if cfg.Issuer == config.DefaultIssuer && !loopback(ln.Addr()) {
		logger.Warn("FLUXAUTH_ISSUER is unset: access tokens carry iss \""+config.DefaultIssuer+"\"; set it to this service's public URL",
			"addr", ln.Addr().String())
	}
	a.public = &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          log.New(slogWriter{logger}, "", 0),
	}
	// Shutdown waits for every request to end: streams end when the feed closes.
	a.public.RegisterOnShutdown(a.Hub.Close)
	if a.Metrics == nil {
		return nil
	}
	internalLn := a.deps.InternalListener
	if internalLn == nil {
		var err error
		if internalLn, err = net.Listen("tcp", cfg.InternalAddr); err != nil {
			return fmt.Errorf("FLUXAUTH_INTERNAL_ADDR: %v", err)
		}
	}
	a.internalLn = internalLn
	a.onUnstarted(func() { internalLn.Close() })
	a.internal = &http.Server{Handler: api.InternalHandler(a.Metrics), ReadHeaderTimeout: 5 * time.Second}
	return nil
}

// URL is the public listener's base URL, http://host:port.
func (a *App) URL() string { return "http://" + a.publicLn.Addr().String() }

// InternalURL is the internal listener's base URL; empty when there is none.
func (a *App) InternalURL() string {
	if a.internalLn == nil {
		return ""
	}
	return "http://" + a.internalLn.Addr().String()
}

// Handler is the public API's handler, every middleware included: what the public listener serves.
func (a *App) Handler() http.Handler { return a.handler }

func (a *App) onRelease(fn func())   { a.release = append(a.release, fn) }
func (a *App) onUnstarted(fn func()) { a.unstarted = append(a.unstarted, fn) }

// discard undoes New, for an App that will never run: what Run would have stopped, then what it
// would have closed at the end.
func (a *App) discard() {
	for i := len(a.unstarted) - 1; i >= 0; i-- {
		a.unstarted[i]()
	}
	a.closeAll()
}

// closeAll closes what New opened, last first.
func (a *App) closeAll() {
	for i := len(a.release) - 1; i >= 0; i-- {
		a.release[i]()
	}
}

// calibrate measures what verifying each kind of stored hash costs, so that every login answer is
// padded to the slowest (password.Hasher.Floor). When the store cannot say which kinds it holds, the
// hasher's own parameters are measured, and Verify raises the floor as it meets the others. It
// returns only ctx.Err().
func calibrate(ctx context.Context, hasher *password.Hasher, db fluxauth.UserStore, logger *slog.Logger) error {
	keys, err := db.PasswordHashParams(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logger.Warn("password: listing the stored hash parameters failed; login answers are padded to the hasher's own until others are met", "err", err)
		keys = nil
	}
	if err := hasher.Calibrate(ctx, keys); err != nil {
		return err
	}
	logger.Info("password: login answers padded to", "floor", hasher.Floor(), "keys", len(keys))
	return nil
}

// openStore opens the database cfg.DatabaseURL names.
func openStore(ctx context.Context, cfg *config.Config) (interface {
	fluxauth.Backend
	MigrateUp(ctx context.Context) ([]string, error)
}, error) {
	if path, ok := cfg.SQLitePath(); ok {
		return sqlite.Open(ctx, path)
	}
	return postgres.Open(ctx, cfg.DatabaseURL)
}

// NewLogger returns the logger of cfg's level and format, writing to w; with reporter set,
// error-level records are reported to Sentry too. Every record made during a request carries its
// request ID.
func NewLogger(cfg *config.Config, w io.Writer, reporter *alert.Sentry) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	if reporter != nil {
		h = reporter.Handler(h)
	}
	return slog.New(api.NewLogHandler(h))
}

// CleanupJob is the retention cleanup cfg describes, on store: serve runs it daily, "fluxauth
// cleanup" once.
func CleanupJob(cfg *config.Config, store fluxauth.CleanupStore, clock fluxauth.Clock, logger *slog.Logger) *cleanup.Job {
	return &cleanup.Job{
		Store: store, TokenRetention: cfg.TokenRetention, EventRetention: cfg.EventRetention,
		Batch: cfg.CleanupBatch, Clock: clock, Logger: logger,
	}
}

// newMailSender returns the outbox's sender over the configured transport, or nil when mail is off;
// either way it says at start what mail will do.
func (a *App) newMailSender() *mail.Sender {
	cfg, logger := a.cfg, a.Logger
	var transport mail.Transport
	switch {
	case cfg.SMTP.Real():
		transport = mail.NewSMTP(cfg.SMTP, cfg.MailFrom)
		logger.Info("mail is sent through SMTP", "smtp", cfg.SMTP.String(), "from", cfg.MailFrom) // String has no password
	case cfg.SMTP.Enabled():
		transport = mail.Log{Logger: logger} // config's warning at start says what this means
	default:
		logger.Warn("mail is disabled (FLUXAUTH_SMTP_URL is empty): password reset and email verification answer 503 mail_unavailable, and signups get no verification mail")
		return nil
	}
	return mail.NewSender(mail.Sender{Store: a.Store, Transport: transport, Links: cfg.Links, Clock: a.Clock, Rand: a.deps.Rand,
		Logger: logger, Poll: a.deps.MailPoll})
}

// loadKeys loads cfg's key file, creating it when missing.
func loadKeys(cfg *config.Config, clock fluxauth.Clock, random io.Reader) (*token.KeySet, error) {
	keys, err := token.LoadOrCreateKeyFile(cfg.SigningKeys, clock, random)
	if err != nil {
		return nil, fmt.Errorf("FLUXAUTH_SIGNING_KEYS: %w", err)
	}
	return keys, nil
}

// newIssuer builds the access-token issuer: ES256 with keys, or the legacy HS256 secret. The keys
// are needed in both modes, since they also hold the refresh-token secret (never derived from the
// HS256 secret, which legacy verifiers hold).
func newIssuer(cfg *config.Config, keys *token.KeySet, clock fluxauth.Clock, random io.Reader) (*token.Issuer, error) {
	tc := token.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.AccessTTL, Clock: clock, Rand: random}
	if cfg.JWTAlg == "HS256" {
		tc.HMACSecret = []byte(cfg.JWTSecret)
	} else {
		tc.Keys = keys
	}
	return token.NewIssuer(tc)
}

// LoadIssuer builds the issuer serve signs with from cfg, loading (or creating) its key file: what
// "fluxauth keys rotate" asks how long a retired key must be kept.
func LoadIssuer(cfg *config.Config, clock fluxauth.Clock, random io.Reader) (*token.Issuer, *token.KeySet, error) {
	keys, err := loadKeys(cfg, clock, random)
	if err != nil {
		return nil, nil, err
	}
	issuer, err := newIssuer(cfg, keys, clock, random)
	return issuer, keys, err
}

// databaseKind names the kind of database cfg uses, for the start-up line.
func databaseKind(cfg *config.Config) string {
	if _, ok := cfg.SQLitePath(); ok {
		return "sqlite"
	}
	return "postgres"
}

// redisLogger sends go-redis's own messages (one per failed dial) to debug level: during an outage
// the breaker's once-a-minute warning is the signal, not a flood of dial errors.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// slogWriter routes net/http's internal error log (TLS handshake errors and the like) into slog.
type slogWriter struct{ logger *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.logger.Warn("http server", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}

// loopback reports whether addr is reachable from this machine only.
func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
