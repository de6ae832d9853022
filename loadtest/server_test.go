package loadtest

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/password"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/revocation"
	"github.com/fluxstudio/fluxauth/sqlite"
	"github.com/fluxstudio/fluxauth/token"
)

// mustStartServer starts a complete fluxauth on loopback over a fresh SQLite database, assembled as
// api's own test harness does, with cheap password hashing and no rate limits (as BENCHMARKS.md
// asks of a server under load). It returns the base URL.
func mustStartServer(tb testing.TB) string {
	tb.Helper()
	store := sqlite.MustOpenDB(tb)
	clock := fluxauth.SystemClock{}
	keys, err := token.GenerateKeySet(clock, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	issuer, err := token.NewIssuer(token.Config{Issuer: "http://fluxauth.test", Audience: "fluxstudio", Keys: keys, Clock: clock})
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(api.NewLogHandler(slog.NewTextHandler(io.Discard, nil)))
	recorder := audit.New(store, logger, audit.Config{FlushInterval: 10 * time.Millisecond})
	tb.Cleanup(func() { recorder.Close(context.Background()) })
	acc := &account.Service{
		Store: store, Passwords: password.New(password.Params{Memory: 1024, Time: 1, Threads: 1}, 4, rand.Reader),
		Tokens: issuer, Revocations: revocation.NewDB(store, 0, clock), Events: recorder,
		Clock: clock, Rand: rand.Reader, Logger: logger, Config: account.DefaultConfig(),
		Limiter: ratelimit.NewMemory(clock), Rules: ratelimit.Rules{},
	}
	srv := &api.Server{Logger: logger, DB: store, Accounts: acc, Admin: store}
	ts := httptest.NewServer(srv.Handler())
	tb.Cleanup(ts.Close)
	return ts.URL
}
