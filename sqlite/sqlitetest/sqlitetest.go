// Package sqlitetest opens real, migrated SQLite databases for tests. It lives apart from package
// sqlite so that the binary, which links sqlite, never links the testing package.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/fluxstudio/fluxauth/sqlite"
)

// MustOpenDB opens a migrated database in a file of tb's temporary directory and closes it at the
// end of the test. A file rather than ":memory:" so that the writer and the reader pool share it.
func MustOpenDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "fluxauth.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("sqlite: close: %v", err)
		}
	})
	if _, err := db.MigrateUp(ctx); err != nil {
		tb.Fatalf("sqlite: migrate: %v", err)
	}
	return db
}
