package main

import (
	"context"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/migrate"
	"github.com/fluxstudio/fluxauth/postgres"
	"github.com/fluxstudio/fluxauth/sqlite"
)

// database is a Store that also owns its schema.
type database interface {
	fluxauth.Store
	fluxauth.AdminStore
	fluxauth.CleanupStore
	fluxauth.EventFeedStore
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
