// Package testenv tells tests where the real PostgreSQL and Redis servers are (and chromium, for the
// browser tests). A test that needs one skips with a visible reason when it is not there, and fails
// instead when FLUXAUTH_TEST_REQUIRE_SERVICES=1 (as in CI), so a missing service can never pass
// silently.
//
// Tests that stop, freeze or restart a dependency never do it to the shared servers: they start a
// private one (StartPostgres, StartRedis) or put a Proxy in front of it (Stop, Pause).
package testenv

import (
	"net"
	"os"
	"testing"
)

// PostgresURL returns FLUXAUTH_TEST_POSTGRES_URL, skipping or failing tb when it is unset.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	return need(tb, "FLUXAUTH_TEST_POSTGRES_URL", "PostgreSQL")
}

// RedisURL returns FLUXAUTH_TEST_REDIS_URL, skipping or failing tb when it is unset.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	return need(tb, "FLUXAUTH_TEST_REDIS_URL", "Redis")
}

// Required reports whether CI demands every service (FLUXAUTH_TEST_REQUIRE_SERVICES=1).
func Required() bool { return os.Getenv("FLUXAUTH_TEST_REQUIRE_SERVICES") == "1" }

func need(tb testing.TB, name, what string) string {
	tb.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if Required() {
		tb.Fatalf("%s is unset but FLUXAUTH_TEST_REQUIRE_SERVICES=1: %s tests must run", name, what)
	}
	tb.Skipf("%s tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable or redis://127.0.0.1:6379/0)", what, name)
	return ""
}

// FreeAddr returns a loopback address nobody listens on.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
