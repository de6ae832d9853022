package loadtest

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/internal/testserver"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// mustStartServer starts a complete fluxauth on loopback over a fresh SQLite database, assembled as
// api's own test harness does, with cheap password hashing and no rate limits (as BENCHMARKS.md
// asks of a server under load). It returns the base URL.
func mustStartServer(tb testing.TB) string {
	tb.Helper()
	store := sqlitetest.MustOpenDB(tb)
	logger := slog.New(api.NewLogHandler(slog.NewTextHandler(io.Discard, nil)))
	acc, _ := testserver.NewAccounts(tb, store, testserver.Options{Logger: logger})
	srv := &api.Server{Logger: logger, DB: store, Accounts: acc, Admin: store}
	ts := httptest.NewServer(srv.Handler())
	tb.Cleanup(ts.Close)
	return ts.URL
}
