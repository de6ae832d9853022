package app

import (
	"context"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxstudio/fluxauth/alert"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// alertFlushTimeout is how long shutdown waits for error reports and alerts to leave, after the
// requests are done: a Sentry or webhook that does not answer must not hold the process.
const alertFlushTimeout = 5 * time.Second

// newScrubber knows these configured secrets by value, so they are filtered wherever they appear:
// the HS256 secret, the alert webhook URL, the SMTP password, the Sentry DSN's key, and the
// passwords in the database and Redis URLs.
func newScrubber(cfg *config.Config) *alert.Scrubber {
	secrets := []string{cfg.JWTSecret, cfg.Legacy.Secret, cfg.AlertWebhookURL, cfg.SMTP.Password}
	if u, err := url.Parse(cfg.SentryDSN); err == nil && u.User != nil {
		pw, _ := u.User.Password() // a legacy DSN's secret key
		secrets = append(secrets, u.User.Username(), pw)
	}
	for _, raw := range []string{cfg.DatabaseURL, cfg.RedisURL} {
		if u, err := url.Parse(raw); err == nil {
			if pw, ok := u.User.Password(); ok {
				secrets = append(secrets, pw)
			}
		}
	}
	return alert.NewScrubber(secrets...)
}

// newReporter returns the Sentry reporter, or nil when FLUXAUTH_SENTRY_DSN is empty. closeReporter
// sends what it queued, within alertFlushTimeout.
func (a *App) newReporter(scrub *alert.Scrubber) (*alert.Sentry, error) {
	if a.cfg.SentryDSN == "" {
		return nil, nil
	}
	return alert.NewSentry(alert.SentryConfig{
		DSN: a.cfg.SentryDSN, Environment: a.cfg.SentryEnvironment, Release: a.version, ServerName: a.deps.Hostname, Scrubber: scrub,
	})
}

func closeReporter(reporter *alert.Sentry, logger *slog.Logger) {
	if reporter == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), alertFlushTimeout)
	defer cancel()
	if err := reporter.Close(ctx); err != nil {
		logger.Warn("sentry: reports not all sent at shutdown", "err", err)
	}
}

// alerts is the alert monitor on the recorder's subscription, sending to Sentry (when configured)
// and the webhook (when configured); alerts are logged in every case. run runs the monitor until
// stop (Run runs it among its goroutines); stop, for after the recorder is drained, ends the
// subscription, waits for the monitor to count what it gathered, and delivers the webhook's queue
// within alertFlushTimeout (the webhook runs in Run's lifecycle; Close drains it whether it ran or
// not). stop may be called more than once, and whether run was or not.
type alerts struct {
	monitor *alert.Monitor
	sub     *audit.Subscription
	run     func()
	stop    func()
}

// newAlerts builds the alerts; threshold counts go to the App's limiter, shared through Redis when
// it is the Redis fallback.
func (a *App) newAlerts(scrub *alert.Scrubber) (*alerts, error) {
	cfg, logger := a.cfg, a.Logger
	var sinks []alert.Sink
	if a.Sentry != nil {
		sinks = append(sinks, a.Sentry)
	}
	if cfg.AlertWebhookURL != "" {
		webhook, err := alert.NewWebhook(alert.WebhookConfig{URL: cfg.AlertWebhookURL, Environment: cfg.SentryEnvironment,
			Instance: a.deps.Hostname, Release: a.version, Scrubber: scrub, Logger: logger, Backoff: a.deps.WebhookBackoff, Clock: a.Clock})
		if err != nil {
			return nil, err
		}
		a.Webhook = webhook
		sinks = append(sinks, webhook)
	}
	counter, _ := a.Limiter.(ratelimit.Threshold)
	monitor := alert.NewMonitor(alert.MonitorConfig{Thresholds: cfg.Alerts, Counter: counter, Sinks: sinks, Logger: logger,
		Clock: a.Clock, CountEvery: a.deps.AlertCountEvery})
	// Room for a burst of events: a subscriber further behind misses events and says so.
	sub := a.Recorder.Follow(4096)
	var started atomic.Bool
	done := make(chan struct{})
	run := func() {
		started.Store(true)
		defer close(done)
		monitor.Run(context.Background(), sub.C, sub.Dropped)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			sub.Close()
			if started.Load() {
				<-done
			}
			ctx, cancel := context.WithTimeout(context.Background(), alertFlushTimeout)
			defer cancel()
			if a.Webhook != nil {
				if err := a.Webhook.Close(ctx); err != nil {
					logger.Warn("alerts: webhook queue not drained at shutdown", "err", err)
				}
			}
		})
	}
	return &alerts{monitor: monitor, sub: sub, run: run, stop: stop}, nil
}
