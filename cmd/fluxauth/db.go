package main

import (
	"context"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/postgres"
	"github.com/fluxstudio/fluxauth/sqlite"
)

// database is a Store that also owns its schema.
type database interface {
	fluxauth.Store
	fluxauth.AdminStore
	fluxauth.CleanupStore
	MigrateUp(ctx context.Context) ([]string, error)
	MigrateDown(ctx context.Context) (string, error)
	MigrationStatus(ctx context.Context) ([]sqlite.MigrationStatus, error)
}

// pgDatabase gives postgres.DB the same migration-status type as sqlite.DB.
type pgDatabase struct{ *postgres.DB }

func (p pgDatabase) MigrationStatus(ctx context.Context) ([]sqlite.MigrationStatus, error) {
	list, err := p.DB.MigrationStatus(ctx)
	out := make([]sqlite.MigrationStatus, len(list))
	for i, m := range list {
		out[i] = sqlite.MigrationStatus(m)
	}
	return out, err
}

func openDatabase(ctx context.Context, cfg *Config) (database, error) {
	if cfg.sqlite() {
		return sqlite.Open(ctx, cfg.sqlitePath())
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	return pgDatabase{db}, nil
}
