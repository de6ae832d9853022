package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// CreateTestDatabase creates an empty, uniquely named database on the server of testenv.PostgresURL
// and returns its URL; the database is dropped, its connections terminated, when tb ends. For tests
// that run migrations themselves or start the binary. It skips or fails tb as testenv decides when
// no server is configured.
func CreateTestDatabase(tb testing.TB) string {
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
			tb.Fatalf("postgres: connect to the test server: %v", mapErr(err))
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

// MustOpenTestDB opens a fresh, migrated database (see CreateTestDatabase) and closes it when tb ends.
func MustOpenTestDB(tb testing.TB) *DB {
	tb.Helper()
	url := CreateTestDatabase(tb)
	ctx := context.Background()
	db, err := Open(ctx, url)
	if err != nil {
		tb.Fatalf("postgres.Open: %v", err)
	}
	// Registered after CreateTestDatabase's cleanup, so it runs first: the pool closes before the drop.
	tb.Cleanup(func() { db.Close() })
	if _, err := db.MigrateUp(ctx); err != nil {
		tb.Fatalf("postgres: migrate: %v", err)
	}
	return db
}
