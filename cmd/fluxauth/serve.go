package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/alert"
	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/dashboard"
	"github.com/fluxstudio/fluxauth/feed"
	"github.com/fluxstudio/fluxauth/internal/breaker"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/mail"
	"github.com/fluxstudio/fluxauth/oidc"
	"github.com/fluxstudio/fluxauth/password"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/revocation"
	"github.com/fluxstudio/fluxauth/token"
)

// newLogger returns the logger of cfg's level and format; with reporter set, error-level records are
// reported to Sentry too.
func newLogger(cfg *config.Config, w io.Writer, reporter *alert.Sentry) *slog.Logger {
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

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var noMigrate bool
	cfg, _, err := parseConfig("serve", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&noMigrate, "no-migrate", false, "do not apply pending migrations at start")
	})
	if err != nil {
		return err
	}
	scrub := newScrubber(cfg)
	reporter, err := newReporter(cfg, scrub)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr, reporter)
	defer closeReporter(reporter, logger)
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	clock := fluxauth.SystemClock{}

	db, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeWithin(logger, "database", db.Close)
	if !noMigrate {
		applied, err := db.MigrateUp(ctx)
		if err != nil {
			return err
		}
		for _, name := range applied {
			logger.Info("migration applied", "name", name)
		}
	}

	issuer, keys, err := newIssuer(cfg, clock)
	if err != nil {
		return err
	}
	hasher := password.New(cfg.Password, cfg.HashWorkers, rand.Reader)

	dbRevocations := revocation.NewDB(db, cfg.RevocationCacheTTL, clock)
	var revocations account.Revocations = dbRevocations
	var redisRevocations *revocation.Redis
	var limiter ratelimit.Limiter = ratelimit.NewMemory(clock)
	var degraded func() []string
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("FLUXAUTH_REDIS_URL: %v", err)
		}
		// Timeouts are per call (the breaker's, FLUXAUTH_REDIS_TIMEOUT); a few idle connections
		// spare the first requests a cold dial.
		opts.ContextTimeoutEnabled = true
		opts.MinIdleConns = 4
		redis.SetLogger(redisLogger{logger})
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		// One resilience policy for every use of Redis: whichever call sees it fail first spares
		// the others the wait, and readiness reports one state.
		redisBreaker := breaker.New(breaker.Config{
			Name: "redis", Fallback: "rate limits are per instance and revocations are checked in the database",
			Timeout: cfg.RedisTimeout, Clock: clock, Logger: logger,
		})
		// Window: announceRevoked keeps a revocation for the access-token TTL plus the longest leeway,
		// so that is how long an access token from before a Redis data loss can still be presented.
		redisRevocations = revocation.NewRedis(rdb, dbRevocations, revocation.RedisConfig{
			Prefix: "fluxauth:", Window: issuer.TTL() + token.MaxLeeway, Breaker: redisBreaker,
			Clock: clock, Logger: logger,
		})
		revocations = redisRevocations
		limiter = ratelimit.NewFallback(ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Timeout: cfg.RedisTimeout}), limiter, redisBreaker)
		degraded = func() []string {
			if redisBreaker.Open() {
				return []string{"redis"}
			}
			return nil
		}
	}

	recorder := audit.New(db, logger, audit.Config{})
	accounts := &account.Service{
		Store: db, Admin: db, Passwords: hasher, Tokens: issuer, Refreshes: keys.RefreshMinter(), Devices: keys.DeviceMinter(), Revocations: revocations,
		Events: recorder, Clock: clock, Rand: rand.Reader, Logger: logger,
		Config: cfg.Account, Limiter: limiter, Rules: cfg.Rules,
		Providers: map[string]*oidc.Verifier{
			oidc.Google: oidc.NewVerifier(oidc.Google, oidc.Config{Issuer: cfg.GoogleIssuer, ClientIDs: cfg.GoogleClientIDs, Clock: clock}),
			oidc.Apple:  oidc.NewVerifier(oidc.Apple, oidc.Config{Issuer: cfg.AppleIssuer, ClientIDs: cfg.AppleClientIDs, Clock: clock}),
		},
	}
	mailer := newMailSender(cfg, db, clock, logger)
	if mailer != nil {
		accounts.Mail = mailer // only when set: a nil *mail.Sender would be a Notifier that is not nil
	}
	monitor, alertEvents, runAlerts, stopAlerts, err := startAlerts(cfg, recorder, limiter, reporter, scrub, logger)
	if err != nil {
		return err
	}
	defer stopAlerts() // on an early return; the shutdown below stops them after draining the recorder
	// Metrics are measured only when the internal listener can serve them.
	var metrics *api.Metrics
	if cfg.InternalAddr != "" {
		metrics = api.NewMetrics()
		metrics.ExportSetAside(recorder.SetAside)
		metrics.ExportSubscriberDrops("alerts", alertEvents.Dropped)
	}
	// The dashboard's live feed: one reader of the audit log for every stream of this instance. Its
	// reaction to account_unlocked is how an unlock reaches every instance's own limiter.
	hub := feed.New(db, clock, logger, feed.Config{})
	hub.React(fluxauth.EventAccountUnlocked, accounts.ClearLocalLockout)
	srv := &api.Server{Logger: logger, DB: db, Accounts: accounts, Admin: db, Feed: hub, TrustedProxies: cfg.TrustedProxies,
		Degraded: degraded, Metrics: metrics, CORSOrigins: cfg.CORSOrigins, RateLimited: monitor.RateLimited,
		Dashboard: dashboard.Handler()}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("FLUXAUTH_ADDR: %v", err)
	}
	if cfg.Issuer == config.DefaultIssuer && !loopback(ln.Addr()) {
		logger.Warn("FLUXAUTH_ISSUER is unset: access tokens carry iss \""+config.DefaultIssuer+"\"; set it to this service's public URL",
			"addr", ln.Addr().String())
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          log.New(slogWriter{logger}, "", 0),
	}
	// Shutdown waits for every request to end: streams end when the feed closes.
	httpSrv.RegisterOnShutdown(hub.Close)
	var internal *http.Server
	var internalLn net.Listener
	if cfg.InternalAddr != "" {
		if internalLn, err = net.Listen("tcp", cfg.InternalAddr); err != nil {
			ln.Close()
			return fmt.Errorf("FLUXAUTH_INTERNAL_ADDR: %v", err)
		}
		internal = &http.Server{Handler: api.InternalHandler(metrics), ReadHeaderTimeout: 5 * time.Second}
	}

	// From here every goroutine belongs to lc: serve returns only when all of them have.
	lc := newLifecycle(ctx, logger)
	if keys != nil {
		lc.loop("signing-key reload", func(ctx context.Context) error { reloadKeys(ctx, keys, logger); return nil })
	}
	if cfg.CleanupAt != "off" {
		job := newCleanupJob(cfg, db, logger)
		lc.loop("daily cleanup", func(ctx context.Context) error { return job.Daily(ctx, cfg.CleanupAt) })
	}
	if mailer != nil {
		// At shutdown a mail being sent is interrupted and recorded for an immediate retry, by this
		// instance's next start or by another instance.
		lc.loop("mail sender", func(ctx context.Context) error { mailer.Run(ctx); return nil })
	}
	if redisRevocations != nil {
		lc.loop("revocation re-announcement", func(ctx context.Context) error { redisRevocations.Run(ctx); return nil })
	}
	lc.loop("alert monitor", func(context.Context) error { runAlerts(); return nil }) // until stopAlerts
	lc.loop("security feed", hub.Run)
	lc.loop("security feed wakes", func(ctx context.Context) error { hub.Listen(ctx, db, recorder); return nil })
	stopEvents := func() {}
	if metrics != nil {
		events := recorder.Follow(1024)
		metrics.ExportSubscriberDrops("metrics", events.Dropped)
		stopEvents = events.Close
		lc.loop("metrics event counter", func(context.Context) error {
			for ev := range events.C { // until shutdown ends the subscription
				metrics.CountEvent(ev)
			}
			return nil
		})
		lc.serve("internal listener", internal, internalLn)
		logger.Info("internal listener (/metrics, /debug/pprof/)", "addr", internalLn.Addr().String())
	}
	lc.serve("public listener", httpSrv, ln)
	logger.Info("fluxauth listening", "addr", ln.Addr().String(), "version", version, "database", databaseKind(cfg), "redis", cfg.RedisURL != "")

	lc.onShutdown(func() error {
		logger.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout)
		deadline := time.Now().Add(cfg.ShutdownTimeout)
		shutCtx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		var errs []error
		// In-flight requests get the timeout but for a reserve in which the events they queued
		// are written. Shutdown closes the listeners at once: new connections are refused.
		drainCtx, cancelDrain := context.WithDeadline(shutCtx, deadline.Add(-eventReserve(cfg.ShutdownTimeout)))
		defer cancelDrain()
		if internal != nil {
			internal.Close() // metrics and profiles are not worth waiting for
		}
		if err := httpSrv.Shutdown(drainCtx); err != nil {
			logger.Error("shutdown: in-flight requests outlasted the shutdown timeout; closing their connections",
				"timeout", cfg.ShutdownTimeout, "err", err)
			httpSrv.Close()
			errs = append(errs, fmt.Errorf("graceful shutdown: in-flight requests cut: %w", err))
		}
		// Requests are done; revocations Redis missed get one more try before its client closes.
		if redisRevocations != nil {
			if err := redisRevocations.Flush(shutCtx); err != nil {
				logger.Warn("revocation: not every failed announcement reached redis before shutdown", "err", err)
			}
		}
		// The events the requests queued are written before the database closes; those that
		// cannot be by the deadline are counted in the log (Close), never dropped silently.
		if err := recorder.Close(shutCtx); err != nil {
			errs = append(errs, err)
		}
		stopEvents()
		stopAlerts() // after the recorder is drained: the events it wrote last are alerted on too
		if len(errs) == 0 {
			logger.Info("stopped")
		}
		return errors.Join(errs...)
	})
	return lc.wait()
}

// newMailSender returns the outbox's sender over the configured transport, or nil when mail is off;
// either way it says at start what mail will do.
func newMailSender(cfg *config.Config, db database, clock fluxauth.Clock, logger *slog.Logger) *mail.Sender {
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
	return mail.NewSender(mail.Sender{Store: db, Transport: transport, Links: cfg.Links, Clock: clock, Rand: rand.Reader, Logger: logger})
}

// closeBound bounds closing a client at exit. A healthy pool closes in milliseconds; one whose
// database stopped answering waits for every connection's cancel request, which pgx gives 15 s.
const closeBound = 500 * time.Millisecond

// closeWithin closes a client on the way out, giving up after closeBound: the process is exiting,
// and the operating system closes whatever is left.
func closeWithin(logger *slog.Logger, what string, closeFn func() error) {
	done := make(chan struct{})
	go func() {
		closeFn()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeBound):
		logger.Warn("exit: "+what+" connections still closing; leaving them to the operating system", "waited", closeBound)
	}
}

// eventReserve is the part of the shutdown timeout kept for writing the security events the last
// requests queued: a quarter, at most 2 s (a batch takes milliseconds; the rest is for a database
// that is slow to answer).
func eventReserve(timeout time.Duration) time.Duration { return min(timeout/4, 2*time.Second) }

func databaseKind(cfg *config.Config) string {
	if _, ok := cfg.SQLitePath(); ok {
		return "sqlite"
	}
	return "postgres"
}

// newIssuer builds the access-token issuer: ES256 with the shared key file, or the legacy HS256
// secret. The key file is loaded in both modes, since it also holds the refresh-token secret (never
// derived from the HS256 secret, which legacy verifiers hold). The key set is returned so serve can
// pick up rotations made by "fluxauth keys rotate".
func newIssuer(cfg *config.Config, clock fluxauth.Clock) (*token.Issuer, *token.KeySet, error) {
	tc := token.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.AccessTTL, Clock: clock, Rand: rand.Reader}
	keys, err := token.LoadOrCreateKeyFile(cfg.SigningKeys, clock, rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("FLUXAUTH_SIGNING_KEYS: %w", err)
	}
	if cfg.JWTAlg == "HS256" {
		tc.HMACSecret = []byte(cfg.JWTSecret)
	} else {
		tc.Keys = keys
	}
	issuer, err := token.NewIssuer(tc)
	return issuer, keys, err
}

// keyReloadEvery is how often serve re-reads the key file: often enough that every instance signs
// with a rotated-in key within seconds, and a reload is only a small file read.
const keyReloadEvery = 10 * time.Second

// reloadKeys picks up keys rotated into the shared file while serving.
func reloadKeys(ctx context.Context, keys *token.KeySet, logger *slog.Logger) {
	t := time.NewTicker(keyReloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := keys.Reload()
			if err != nil {
				logger.Error("signing keys: reload failed; keeping the keys in use", "err", err)
			} else if changed {
				logger.Info("signing keys reloaded", "current_kid", keys.CurrentKID())
			}
		}
	}
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
