package loadtest

import (
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/internal/testserver"
)

// mustStartServer starts a complete fluxauth on loopback over a fresh SQLite database, built as
// serve builds it (testserver), with cheap password hashing, no rate limits (as docs/BENCHMARKS.md asks
// of a server under load) and the system clock. It returns the base URL.
func mustStartServer(tb testing.TB) string {
	tb.Helper()
	return testserver.Start(tb, testserver.Config(tb), app.Deps{Clock: fluxauth.SystemClock{}}).URL()
}
