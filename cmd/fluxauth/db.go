package main

import (
	"context"
	"fmt"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/migrate"
	"github.com/fluxstudio/fluxauth/postgres"
	"github.com/fluxstudio/fluxauth/sqlite"
)

// database is a storage backend that also owns its schema.
type database interface {
	fluxauth.Backend
	MigrateUp(ctx context.Context) ([]string, error)
	MigrateDown(ctx context.Context) (string, error)
	MigrationStatus(ctx context.Context) ([]migrate.Status, error)
}

func openDatabase(ctx context.Context, cfg *config.Config) (database, error) {
	if path, ok := cfg.SQLitePath(); ok {
		return sqlite.Open(ctx, path)
	}
	return postgres.Open(ctx, cfg.DatabaseURL)
}

// openCurrentDatabase opens the database for a command that must not change its schema (every one
// but serve and migrate up): on a schema older than the binary it changes nothing and fails, naming
// "fluxauth migrate up". During a rolling deploy only the deploy's own step migrates, so a new
// binary's cleanup or users command never changes the schema under the old instances.
func openCurrentDatabase(ctx context.Context, cfg *config.Config) (database, error) {
	db, err := openDatabase(ctx, cfg)
	if err != nil {
		return nil, err
	}
	list, err := db.MigrationStatus(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	var pending []string
	for _, m := range list {
		if !m.Applied {
			pending = append(pending, fmt.Sprintf("%03d %s", m.Version, m.Name))
		}
	}
	if len(pending) > 0 {
		db.Close()
		return nil, fmt.Errorf("the database schema is older than this binary: %d migration(s) pending, from %s; run \"fluxauth migrate up\" first (nothing was changed)",
			len(pending), pending[0])
	}
	return db, nil
}
