package postgres_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/postgres"
)

func TestMigrationsRollBackToZeroAndReapply(t *testing.T) {
	ctx := context.Background()
	db := postgres.MustOpenTestDB(t)
	latest := postgres.LatestSchemaVersion()
	if latest != 4 {
		t.Fatalf("LatestSchemaVersion = %d, want 4", latest)
	}
	wantVersion(t, db, latest)
	wantSchema(t, db)

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
	if got := tables(t, db); !slices.Equal(got, []string{"schema_migrations"}) {
		t.Fatalf("tables at version 0 = %v, want only schema_migrations", got)
	}

	up, err := db.MigrateUp(ctx)
	if err != nil || len(up) != 4 {
		t.Fatalf("MigrateUp = %v, %v; want 4 migrations", up, err)
	}
	wantVersion(t, db, latest)
	wantSchema(t, db)
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	for i, s := range status {
		if s.Version != int64(i+1) || !s.Applied || s.AppliedAt.IsZero() {
			t.Errorf("status[%d] = %+v, want version %d applied", i, s, i+1)
		}
	}
}

func TestOpenDoesNotMigrate(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.CreateTestDatabase(t))
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
	if got := tables(t, db); len(got) > 1 {
		t.Fatalf("tables after Open = %v, want none but goose's", got)
	}
}

func TestInstancesMigratingAtOnceAllSucceed(t *testing.T) {
	url := postgres.CreateTestDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const instances = 4
	applied := make([][]string, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() {
			db, err := postgres.Open(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			applied[i], errs[i] = db.MigrateUp(ctx)
		})
	}
	wg.Wait()
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		total += len(applied[i])
	}
	if total != 4 {
		t.Fatalf("instances applied %v between them, want each of the 4 migrations exactly once", applied)
	}
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wantVersion(t, db, 4)
	wantSchema(t, db)
}

func TestOpenOfUnreachableServerIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
	if !errors.Is(err, fluxauth.ErrUnavailable) {
		t.Fatalf("Open = %v, want ErrUnavailable", err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	db, err := postgres.Open(context.Background(), postgres.CreateTestDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.Ping(context.Background()); !errors.Is(err, fluxauth.ErrUnavailable) {
		t.Fatalf("Ping after Close = %v, want ErrUnavailable", err)
	}
}

func wantVersion(tb testing.TB, db *postgres.DB, want int64) {
	tb.Helper()
	v, err := db.SchemaVersion(context.Background())
	if err != nil {
		tb.Fatalf("SchemaVersion: %v", err)
	}
	if v != want {
		tb.Fatalf("SchemaVersion = %d, want %d", v, want)
	}
}

func tables(tb testing.TB, db *postgres.DB) []string {
	tb.Helper()
	return queryStrings(tb, db, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)
}

// wantSchema checks the tables and the index names other tools and the runbook refer to.
func wantSchema(tb testing.TB, db *postgres.DB) {
	tb.Helper()
	if got, want := tables(tb, db), []string{"identities", "refresh_tokens", "schema_migrations", "security_events", "users"}; !slices.Equal(got, want) {
		tb.Fatalf("tables = %v, want %v", got, want)
	}
	got := queryStrings(tb, db, `SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`)
	for _, want := range []string{
		"idx_refresh_tokens_user_id", "idx_refresh_tokens_token", "idx_refresh_tokens_expires_at",
		"idx_refresh_tokens_active_sessions", "idx_refresh_tokens_session_id",
		"idx_security_events_created_at", "idx_security_events_event_type", "idx_security_events_user_id",
		"idx_security_events_ip_address", "idx_security_events_severity", "idx_users_email", "idx_identities_user_id",
	} {
		if !slices.Contains(got, want) {
			tb.Errorf("index %s is missing; have %v", want, got)
		}
	}
}

func queryStrings(tb testing.TB, db *postgres.DB, query string) []string {
	tb.Helper()
	rows, err := db.Pool().Query(context.Background(), query)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}
