package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/sqlite"
	"github.com/fluxstudio/fluxauth/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) fluxauth.Store { return sqlite.MustOpenDB(tb) })
}

func TestMigrationsRollBackToZeroAndReapply(t *testing.T) {
	ctx := context.Background()
	db := sqlite.MustOpenDB(t)
	latest := sqlite.LatestSchemaVersion()
	if latest != 4 {
		t.Fatalf("LatestSchemaVersion = %d, want 4", latest)
	}
	wantVersion(t, db, latest)

	name, err := db.MigrateDown(ctx)
	if err != nil || name != "004_create_identities.sql" {
		t.Fatalf("MigrateDown = %q, %v; want 004_create_identities.sql", name, err)
	}
	wantVersion(t, db, latest-1)
	down, err := db.MigrateDownTo(ctx, 0)
	if err != nil {
		t.Fatalf("MigrateDownTo(0): %v", err)
	}
	if want := []string{"003_create_users.sql", "002_create_security_events.sql", "001_create_refresh_tokens.sql"}; !slices.Equal(down, want) {
		t.Fatalf("MigrateDownTo(0) rolled back %v, want %v", down, want)
	}
	wantVersion(t, db, 0)
	if name, err := db.MigrateDown(ctx); err != nil || name != "" {
		t.Fatalf("MigrateDown at version 0 = %q, %v; want nothing", name, err)
	}
	if tables := userTables(t, db); !slices.Equal(tables, []string{"schema_migrations"}) {
		t.Fatalf("tables left at version 0: %v", tables)
	}

	up, err := db.MigrateUp(ctx)
	if err != nil || len(up) != 4 {
		t.Fatalf("MigrateUp = %v, %v; want 4 migrations", up, err)
	}
	wantVersion(t, db, latest)
	if again, err := db.MigrateUp(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second MigrateUp = %v, %v; want nothing to do", again, err)
	}
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	for i, s := range status {
		if s.Version != int64(i+1) || !s.Applied || s.AppliedAt.IsZero() {
			t.Errorf("status[%d] = %+v, want version %d applied", i, s, i+1)
		}
	}
	want := []string{"identities", "refresh_tokens", "schema_migrations", "security_events", "users"}
	if got := userTables(t, db); !slices.Equal(got, want) {
		t.Fatalf("tables = %v, want %v", got, want)
	}
	// The store works on the re-created schema.
	if err := db.CreateUser(ctx, &fluxauth.User{ID: "u1", Email: "a@example.com"}); err != nil {
		t.Fatalf("CreateUser after re-migration: %v", err)
	}
}

func TestStatusOfFreshDatabaseListsEveryMigrationPending(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fresh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	if len(status) != 4 || status[0].Name != "001_create_refresh_tokens.sql" || status[0].Applied {
		t.Fatalf("status = %+v, want 4 pending migrations", status)
	}
	wantVersion(t, db, 0)
}

func TestOpenUsesWALAndForeignKeys(t *testing.T) {
	db := sqlite.MustOpenDB(t)
	ctx := context.Background()
	// An identity must belong to a user: with foreign keys off this insert would succeed.
	err := db.CreateIdentity(ctx, &fluxauth.Identity{Provider: "google", Subject: "s", UserID: "missing"})
	if err == nil {
		t.Fatal("identity of a missing user was inserted: foreign keys are off")
	}
	if _, err := os.Stat(db.Path() + "-wal"); err != nil {
		t.Fatalf("no WAL file next to the database: %v", err)
	}
}

func TestOpenOfUnreachablePathIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(context.Background(), filepath.Join(blocker, "sub", "fluxauth.db"))
	if !errors.Is(err, fluxauth.ErrUnavailable) {
		t.Fatalf("Open under a regular file = %v, want ErrUnavailable", err)
	}
}

func TestInMemoryDatabaseWorksOnOneConnection(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
	if err := db.CreateUser(ctx, &fluxauth.User{ID: "u1", Email: "Mem@example.com"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if _, err := db.UserByEmail(ctx, "mem@example.com"); err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
}

func wantVersion(tb testing.TB, db *sqlite.DB, want int64) {
	tb.Helper()
	v, err := db.SchemaVersion(context.Background())
	if err != nil {
		tb.Fatalf("SchemaVersion: %v", err)
	}
	if v != want {
		tb.Fatalf("SchemaVersion = %d, want %d", v, want)
	}
}

func userTables(tb testing.TB, db *sqlite.DB) []string {
	tb.Helper()
	var names []string
	rows, err := db.QueryContext(context.Background(),
		`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		tb.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}
