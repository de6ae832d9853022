package sqlite

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationTable records applied migrations.
const MigrationTable = "schema_migrations"

// MigrationStatus describes one migration embedded in the binary. It has the same fields as
// postgres.MigrationStatus, so either converts to the other.
type MigrationStatus struct {
	Version   int64
	Name      string // file name, e.g. "001_create_refresh_tokens.sql"
	Applied   bool
	AppliedAt time.Time // zero while pending
}

func (db *DB) migrator() (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	// The provider runs on the writer, so migrations queue behind (and ahead of) ordinary writes.
	// It is never closed: Provider.Close would close the writer.
	return goose.NewProvider(goose.DialectSQLite3, db.writer, fsys,
		goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true))
}

// MigrateUp applies every pending migration, each in its own transaction, and returns the names of
// those it applied.
func (db *DB) MigrateUp(ctx context.Context) ([]string, error) {
	p, err := db.migrator()
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrate up: %w", mapErr(err))
	}
	return resultNames(res), nil
}

// MigrateDown rolls back the most recently applied migration and returns its name; "" when none
// is applied.
func (db *DB) MigrateDown(ctx context.Context) (string, error) {
	p, err := db.migrator()
	if err != nil {
		return "", err
	}
	res, err := p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: migrate down: %w", mapErr(err))
	}
	return path.Base(res.Source.Path), nil
}

// MigrateDownTo rolls back every migration above version (0 rolls back all of them) and returns
// their names, newest first.
func (db *DB) MigrateDownTo(ctx context.Context, version int64) ([]string, error) {
	p, err := db.migrator()
	if err != nil {
		return nil, err
	}
	res, err := p.DownTo(ctx, version)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrate down to %d: %w", version, mapErr(err))
	}
	return resultNames(res), nil
}

// MigrationStatus lists every embedded migration in version order, with when it was applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]MigrationStatus, error) {
	p, err := db.migrator()
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migration status: %w", mapErr(err))
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		ms := MigrationStatus{
			Version: s.Source.Version,
			Name:    path.Base(s.Source.Path),
			Applied: s.State == goose.StateApplied,
		}
		if ms.Applied {
			ms.AppliedAt = s.AppliedAt.UTC()
		}
		out = append(out, ms)
	}
	return out, nil
}

// SchemaVersion returns the version of the newest applied migration, 0 when none is.
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) {
	p, err := db.migrator()
	if err != nil {
		return 0, err
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: schema version: %w", mapErr(err))
	}
	return v, nil
}

// LatestSchemaVersion is the version of the newest migration embedded in the binary.
func LatestSchemaVersion() int64 {
	entries, _ := fs.Glob(migrations, "migrations/*.sql")
	var latest int64
	for _, e := range entries {
		v, err := goose.NumericComponent(path.Base(e))
		if err == nil && v > latest {
			latest = v
		}
	}
	return latest
}

func resultNames(res []*goose.MigrationResult) []string {
	names := make([]string, 0, len(res))
	for _, r := range res {
		names = append(names, path.Base(r.Source.Path))
	}
	return names
}
