// Package postgrestest gives each test its own database on the real PostgreSQL server named by
// FLUXAUTH_TEST_POSTGRES_URL. It lives apart from package postgres so that the binary, which links
// postgres, never links the testing package.
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/postgres"
	"github.com/jackc/pgx/v5"
)

// CreateDatabase creates an empty, uniquely named database on the server of testenv.PostgresURL
// and returns its URL; the database is dropped, its connections terminated, when tb ends. For tests
// that run migrations themselves or start the binary. It skips or fails tb as testenv decides when
// no server is configured.
func CreateDatabase(tb testing.TB) string {
	tb.Helper()
	base := testenv.PostgresURL(tb)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatal("FLUXAUTH_TEST_POSTGRES_URL must be a postgres:// URL")
	}
	var b [8]byte
	rand.Read(b[:])
	name := "fluxauth_test_" + hex.EncodeToString(b[:])

	admin := func(sql string) {
		tb.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Fatalf("postgres: connect to the test server: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			tb.Fatalf("postgres: %s: %v", strings.Fields(sql)[0], err)
		}
	}
	ident := pgx.Identifier{name}.Sanitize()
	admin("CREATE DATABASE " + ident)
	tb.Cleanup(func() { admin("DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)") })

	u.Path = "/" + name
	return u.String()
}

// Open opens a connection pool on the database at url, as another instance sharing it would, and
// closes it when tb ends. It migrates nothing.
func Open(tb testing.TB, url string) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("postgres.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MustOpenDB opens a fresh, migrated database (see CreateDatabase) and closes it when tb ends.
func MustOpenDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	// Open registers its cleanup after CreateDatabase's, so it runs first: the pool closes before
	// the drop.
	db := Open(tb, CreateDatabase(tb))
	if _, err := db.MigrateUp(context.Background()); err != nil {
		tb.Fatalf("postgres: migrate: %v", err)
	}
	return db
}
