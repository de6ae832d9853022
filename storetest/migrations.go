package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/migrate"
)

// Migrating is a store that owns its schema, as both of fluxauth's stores do.
type Migrating interface {
	fluxauth.Store
	MigrateUp(ctx context.Context) ([]string, error)
	MigrateDown(ctx context.Context) (string, error)
	MigrateDownTo(ctx context.Context, version int64) ([]string, error)
	MigrationStatus(ctx context.Context) ([]migrate.Status, error)
	SchemaVersion(ctx context.Context) (int64, error)
}

// migrations are the files every dialect has, oldest first.
var migrations = []string{"001_create_refresh_tokens.sql", "002_create_security_events.sql", "003_create_users.sql", "004_create_identities.sql", "005_refresh_token_reissue.sql", "006_users_email_ascii_case.sql", "007_create_id_token_uses.sql"}

// allTables is the schema once every migration is applied.
var allTables = []string{"id_token_uses", "identities", "refresh_tokens", "schema_migrations", "security_events", "users"}

// RunMigrations rolls a fully migrated db back one step, then to zero, and up again, checking the
// version, the names reported, the tables left (tables lists them, sorted) and that the store works
// on the re-created schema.
func RunMigrations(t *testing.T, db Migrating, latest int64, tables func(tb testing.TB) []string) {
	t.Helper()
	ctx := context.Background()
	if latest != int64(len(migrations)) {
		t.Fatalf("latest schema version = %d, want %d", latest, len(migrations))
	}
	wantVersion(t, db, latest)
	if got := tables(t); !slices.Equal(got, allTables) {
		t.Fatalf("tables = %v, want %v", got, allTables)
	}

	last := len(migrations) - 1
	name, err := db.MigrateDown(ctx)
	if err != nil || name != migrations[last] {
		t.Fatalf("MigrateDown = %q, %v; want %s", name, err, migrations[last])
	}
	wantVersion(t, db, latest-1)
	down, err := db.MigrateDownTo(ctx, 0)
	want := slices.Clone(migrations[:last])
	slices.Reverse(want)
	if err != nil || !slices.Equal(down, want) {
		t.Fatalf("MigrateDownTo(0) = %v, %v; want %v", down, err, want)
	}
	wantVersion(t, db, 0)
	if name, err := db.MigrateDown(ctx); err != nil || name != "" {
		t.Fatalf("MigrateDown at version 0 = %q, %v; want nothing", name, err)
	}
	if got := tables(t); !slices.Equal(got, []string{"schema_migrations"}) {
		t.Fatalf("tables at version 0 = %v, want only schema_migrations", got)
	}

	up, err := db.MigrateUp(ctx)
	if err != nil || !slices.Equal(up, migrations) {
		t.Fatalf("MigrateUp = %v, %v; want %v", up, err, migrations)
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
		if s.Version != int64(i+1) || s.Name != migrations[i] || !s.Applied || s.AppliedAt.IsZero() {
			t.Errorf("status[%d] = %+v, want %s applied", i, s, migrations[i])
		}
	}
	if got := tables(t); !slices.Equal(got, allTables) {
		t.Fatalf("tables after re-migration = %v, want %v", got, allTables)
	}
	mustCreateUser(t, db, "after-remigration@example.com")
}

// RunFreshStatus checks that a database nobody migrated lists every migration as pending.
func RunFreshStatus(t *testing.T, db Migrating) {
	t.Helper()
	status, err := db.MigrationStatus(context.Background())
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	if len(status) != len(migrations) {
		t.Fatalf("status = %+v, want %d migrations", status, len(migrations))
	}
	for i, s := range status {
		if s.Name != migrations[i] || s.Applied {
			t.Errorf("status[%d] = %+v, want %s pending", i, s, migrations[i])
		}
	}
	wantVersion(t, db, 0)
}

func wantVersion(tb testing.TB, db Migrating, want int64) {
	tb.Helper()
	v, err := db.SchemaVersion(context.Background())
	if err != nil {
		tb.Fatalf("SchemaVersion: %v", err)
	}
	if v != want {
		tb.Fatalf("SchemaVersion = %d, want %d", v, want)
	}
}
