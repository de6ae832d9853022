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
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/storetest"
)

func TestMigrationsRollBackToZeroAndReapply(t *testing.T) {
	db := postgrestest.MustOpenDB(t)
	wantIndexes(t, db)
	storetest.RunMigrations(t, db, postgres.LatestSchemaVersion(), func(tb testing.TB) []string { return tables(tb, db) })
	wantIndexes(t, db)
}

func TestEmailKeyMigrationStopsOnLookalikeAccounts(t *testing.T) {
	db := postgrestest.MustOpenDB(t)
	storetest.RunEmailKeyMigration(t, db, func(tb testing.TB, query string) {
		tb.Helper()
		if _, err := db.Pool().Exec(context.Background(), query); err != nil {
			tb.Fatalf("%s: %v", query, err)
		}
	})
	wantIndexes(t, db)
}

func TestOpenDoesNotMigrate(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgrestest.CreateDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.RunFreshStatus(t, db)
	if got := tables(t, db); len(got) > 1 {
		t.Fatalf("tables after Open = %v, want none but goose's", got)
	}
}

func TestInstancesMigratingAtOnceAllSucceed(t *testing.T) {
	url := postgrestest.CreateDatabase(t)
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
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(status); total != want {
		t.Fatalf("instances applied %v between them, want each of the %d migrations exactly once", applied, want)
	}
	wantIndexes(t, db)
	// The schema the race left is the whole one, and it still rolls back and forth.
	storetest.RunMigrations(t, db, postgres.LatestSchemaVersion(), func(tb testing.TB) []string { return tables(tb, db) })
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
	db, err := postgres.Open(context.Background(), postgrestest.CreateDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.Ping(context.Background()); !errors.Is(err, fluxauth.ErrUnavailable) {
		t.Fatalf("Ping after Close = %v, want ErrUnavailable", err)
	}
}

func tables(tb testing.TB, db *postgres.DB) []string {
	tb.Helper()
	return queryStrings(tb, db, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)
}

// wantIndexes checks the index names other tools and the runbook refer to.
func wantIndexes(tb testing.TB, db *postgres.DB) {
	tb.Helper()
	got := queryStrings(tb, db, `SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`)
	for _, want := range []string{
		"idx_refresh_tokens_user_id", "idx_refresh_tokens_token", "idx_refresh_tokens_expires_at",
		"idx_refresh_tokens_session_id",
		"idx_security_events_created_at", "idx_security_events_event_type", "idx_security_events_user_id",
		"idx_security_events_ip_address", "idx_security_events_severity", "idx_users_email", "idx_identities_user_id",
		"idx_id_token_uses_expires_at",
		"idx_device_tokens_user_id",
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
