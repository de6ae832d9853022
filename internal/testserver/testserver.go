// Package testserver starts fluxauth for tests and benchmarks through package app, the way
// "fluxauth serve" builds it, so every test runs the wiring production runs. Only what tests need
// differs, and only through the configuration and app.Deps: cheap hashing, a fake clock, a fresh
// SQLite database, in-memory keys.
package testserver

import (
	"context"
	"crypto/rand"
	"github.com/fluxstudio/fluxauth"
	"io"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/netaddr"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/password"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
	"github.com/fluxstudio/fluxauth/token"
)

// CheapHashing are argon2id parameters that make tests fast; production uses config.Default().Password.
var CheapHashing = password.Params{Memory: 1024, Time: 1, Threads: 1}

// Config returns the configuration test servers start from: production's defaults, but for cheap
// password hashing, no rate limits, no revocation cache, no daily cleanup (tests run the job
// themselves), a loopback address of the system's choosing, the issuer http://fluxauth.test, and
// loopback trusted as a proxy: tests speak for other clients through X-Forwarded-For, as a load
// balancer on loopback would.
func Config(tb testing.TB) *config.Config {
	tb.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.Issuer = "http://fluxauth.test"
	cfg.Password = CheapHashing
	cfg.Rules = ratelimit.Rules{}
	cfg.RevocationCacheTTL = 0
	cfg.CleanupAt = "off"
	proxies, err := netaddr.ParseProxyList("127.0.0.1/32, ::1/128")
	if err != nil {
		tb.Fatal(err)
	}
	cfg.TrustedProxies = proxies
	return cfg
}

// Start builds the service from cfg and deps with app.New, runs it until tb ends and returns it. It
// fails tb when New fails, or when the service stops with an error (a failed goroutine, an unclean
// shutdown). Zero deps fields take test defaults: a fake clock at the current time, a fresh SQLite
// database, a fresh in-memory key set, the log discarded, and the audit recorder flushing every 10ms of real time.
func Start(tb testing.TB, cfg *config.Config, deps app.Deps) *app.App {
	tb.Helper()
	if deps.Clock == nil {
		deps.Clock = testenv.NewClock(time.Now())
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	if deps.LogOutput == nil {
		deps.LogOutput = io.Discard
	}
	if deps.Store == nil {
		deps.Store = sqlitetest.MustOpenDB(tb)
	}
	if deps.Keys == nil {
		ks, err := token.GenerateKeySet(deps.Clock, deps.Rand)
		if err != nil {
			tb.Fatal(err)
		}
		deps.Keys = ks
	}
	if deps.Audit.Clock == nil {
		// The recorder's batching is a bound on how late a client sees an event, not a schedule a
		// test moves: it stays on the real clock (audit's own tests drive it with a fake one).
		deps.Audit.Clock = fluxauth.SystemClock{}
	}
	if deps.Audit.FlushInterval == 0 {
		deps.Audit.FlushInterval = 10 * time.Millisecond
	}
	a, err := app.New(context.Background(), cfg, deps)
	if err != nil {
		tb.Fatalf("app.New: %v", err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- a.Run(context.Background()) }()
	tb.Cleanup(func() {
		if err := a.Shutdown(); err != nil {
			tb.Errorf("the service stopped with an error: %v", err)
		}
		<-stopped
	})
	return a
}
