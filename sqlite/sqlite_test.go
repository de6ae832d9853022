package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/sqlite"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
	"github.com/fluxstudio/fluxauth/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) storetest.Backend {
		db := sqlitetest.MustOpenDB(tb)
		// A write transaction waits for the single writer connection.
		return storetest.Backend{Store: db, LockWaits: func(context.Context) (int64, error) { return db.WriterWaits(), nil }}
	})
}

func TestMigrationsRollBackToZeroAndReapply(t *testing.T) {
	db := sqlitetest.MustOpenDB(t)
	storetest.RunMigrations(t, db, sqlite.LatestSchemaVersion(), func(tb testing.TB) []string { return userTables(tb, db) })
}

func TestEmailKeyMigrationStopsOnLookalikeAccounts(t *testing.T) {
	db := sqlitetest.MustOpenDB(t)
	storetest.RunEmailKeyMigration(t, db, func(tb testing.TB, query string) {
		tb.Helper()
		if _, err := db.ExecContext(context.Background(), query); err != nil {
			tb.Fatalf("%s: %v", query, err)
		}
	})
}

func TestStatusOfFreshDatabaseListsEveryMigrationPending(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "fresh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.RunFreshStatus(t, db)
}

func TestOpenUsesWALAndForeignKeys(t *testing.T) {
	db := sqlitetest.MustOpenDB(t)
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

// The database holds password hashes; with SQLite's defaults it and its -wal and -shm were 0644,
// readable by every local user.
func TestTheDatabaseAndItsWALAreReadableByTheirOwnerOnly(t *testing.T) {
	check := func(t *testing.T, path string) {
		t.Helper()
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.MigrateUp(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), perm)
			}
		}
	}
	t.Run("a new database", func(t *testing.T) {
		check(t, filepath.Join(t.TempDir(), "new.db"))
	})
	t.Run("a database made before the rule", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "old.db")
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.MigrateUp(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// Reopened while the first handle still holds the WAL open, as the CLI next to a running
		// server does.
		check(t, path)
		db.Close()
	})
}
