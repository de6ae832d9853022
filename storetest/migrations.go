package storetest

import (
	"context"
	"slices"
	"strconv"
	"strings"
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

// migrations are the migrations every dialect has, oldest first: its SQL files, and the Go
// migrations of internal/migrate (named after their file there).
var migrations = []string{"001_create_refresh_tokens.sql", "002_create_security_events.sql", "003_create_users.sql", "004_create_identities.sql", "005_refresh_token_reissue.sql", "006_users_email_ascii_case.sql", "007_create_id_token_uses.sql", "008_users_email_key.go", "010_create_device_tokens.sql", "011_create_mail_outbox.sql", "012_create_link_tokens.sql", "013_security_events_seq.sql", "015_refresh_tokens_hot_spend.sql", "016_link_tokens_attempts.sql", "017_user_ids_text.sql", "018_legacy_exchange.sql"}

// versionOf is the version a migration's name starts with.
func versionOf(name string) int64 {
	n, err := strconv.ParseInt(name[:strings.IndexByte(name, '_')], 10, 64)
	if err != nil {
		panic("storetest: migration without a version: " + name)
	}
	return n
}

// allTables is the schema once every migration is applied.
var allTables = []string{"device_tokens", "id_token_uses", "identities", "link_tokens", "mail_outbox", "refresh_tokens", "schema_migrations", "security_events", "users"}

// RunMigrations rolls a fully migrated db back one step, then to zero, and up again, checking the
// version, the names reported, the tables left (tables lists them, sorted) and that the store works
// on the re-created schema.
func RunMigrations(t *testing.T, db Migrating, latest int64, tables func(tb testing.TB) []string) {
	t.Helper()
	ctx := context.Background()
	if want := versionOf(migrations[len(migrations)-1]); latest != want {
		t.Fatalf("latest schema version = %d, want %d", latest, want)
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
	wantVersion(t, db, versionOf(migrations[last-1]))
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
		if s.Version != versionOf(migrations[i]) || s.Name != migrations[i] || !s.Applied || s.AppliedAt.IsZero() {
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

// RunEmailKeyMigration checks migration 008 on a fully migrated db: rolled back to before it, with
// accounts whose addresses have one canonical form inserted as an older version could (through exec,
// which runs a statement on db's database), migrating up fails naming them and changes nothing;
// once an operator has removed one of them, it succeeds, and the accounts already there are found
// by any spelling of their address.
func RunEmailKeyMigration(t *testing.T, db Migrating, exec func(tb testing.TB, query string)) {
	t.Helper()
	ctx := context.Background()
	const name = "008_users_email_key.go"
	i := slices.Index(migrations, name)
	before := versionOf(migrations[i-1])
	// Rolling back undoes 008 and every migration after it, newest first.
	wantDown := slices.Clone(migrations[i:])
	slices.Reverse(wantDown)
	if down, err := db.MigrateDownTo(ctx, before); err != nil || !slices.Equal(down, wantDown) {
		t.Fatalf("MigrateDownTo(%d) = %v, %v; want %v", before, down, err, wantDown)
	}
	legacy := map[string]string{
		"kate@example.com":      newID(),
		"\u212Aate@example.com": newID(), // KELVIN SIGN: two accounts before, one address after
		"élodie@example.com":    newID(),
		"Grace@Example.COM":     newID(),
	}
	for _, email := range []string{"kate@example.com", "\u212Aate@example.com", "élodie@example.com", "Grace@Example.COM"} {
		exec(t, `INSERT INTO users (id, email, password_hash, name, user_type, created_at, updated_at) VALUES ('`+
			legacy[email]+`', '`+email+`', '', 'Legacy', 'client', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z')`)
	}

	_, err := db.MigrateUp(ctx)
	if err == nil {
		t.Fatal("MigrateUp with two accounts of one canonical address succeeded")
	}
	for _, want := range []string{legacy["kate@example.com"], legacy["\u212Aate@example.com"], `"kate@example.com"`, `"\u212aate@example.com"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("MigrateUp's error does not name %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), legacy["élodie@example.com"]) {
		t.Errorf("MigrateUp's error names an account that collides with none:\n%v", err)
	}
	wantVersion(t, db, before)

	exec(t, `DELETE FROM users WHERE id = '`+legacy["\u212Aate@example.com"]+`'`)
	if up, err := db.MigrateUp(ctx); err != nil || !slices.Equal(up, migrations[i:]) {
		t.Fatalf("MigrateUp after the operator's choice = %v, %v; want %v", up, err, migrations[i:])
	}
	for spelling, email := range map[string]string{
		"\u212Aate@example.com": "kate@example.com",
		"ÉLODIE@EXAMPLE.COM":    "élodie@example.com",
		"grace@example.com":     "Grace@Example.COM",
	} {
		u, err := db.UserByEmail(ctx, spelling)
		must(t, "UserByEmail("+spelling+")", err)
		if u.ID != legacy[email] || u.Email != email || u.EmailVerified() {
			t.Fatalf("UserByEmail(%q) = %+v, want the legacy account %s with its email as stored and never verified", spelling, u, legacy[email])
		}
	}
	wantErr(t, "CreateUser of a lookalike of a legacy address", db.CreateUser(ctx, newUser("KATE@example.com")), fluxauth.ErrConflict)
}
