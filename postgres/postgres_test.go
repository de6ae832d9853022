package postgres_test

import (
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) fluxauth.Store { return postgrestest.MustOpenDB(tb) })
}
