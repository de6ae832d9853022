package postgres_test

import (
	"context"
	"testing"

	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) storetest.Backend {
		db := postgrestest.MustOpenDB(tb)
		return storetest.Backend{Store: db, LockWaits: func(ctx context.Context) (int64, error) {
			// Each test has a database of its own, so the backends waiting in it are this test's.
			var n int64
			err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
			return n, err
		}}
	})
}
