package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationTable records applied migrations.
const MigrationTable = "schema_migrations"

// MigrationStatus describes one migration embedded in the binary. It has the same fields as
// sqlite.MigrationStatus, so either converts to the other.
type MigrationStatus struct {
	Version   int64
	Name      string // file name, e.g. "001_create_refresh_tokens.sql"
	Applied   bool
	AppliedAt time.Time // zero while pending
}

// migrationLockID keys the session advisory lock that lets only one instance migrate at a time;
// the others wait, then find nothing left to apply.
const migrationLockID = 0x666c75786175746d // "fluxautm"

// migrator returns a goose provider on a database/sql view of the pool; the caller closes it, which
// releases that view but not the pool.
func (db *DB) migrator() (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	// Poll for the lock every second, for up to ten minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 600))
	if err != nil {
		return nil, err
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		sqlDB.Close()
		return nil, err
	}
	return p, nil
}

// MigrateUp applies every pending migration, each in its own transaction, and returns the names of
// those it applied.
func (db *DB) MigrateUp(ctx context.Context) ([]string, error) {
	p, err := db.migrator()
	if err != nil {
		return nil, err
	}
	defer p.Close()
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate up: %w", mapErr(err))
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
	defer p.Close()
	res, err := p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("postgres: migrate down: %w", mapErr(err))
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
	defer p.Close()
	res, err := p.DownTo(ctx, version)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate down to %d: %w", version, mapErr(err))
	}
	return resultNames(res), nil
}

// MigrationStatus lists every embedded migration in version order, with when it was applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]MigrationStatus, error) {
	p, err := db.migrator()
	if err != nil {
		return nil, err
	}
	defer p.Close()
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migration status: %w", mapErr(err))
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
	defer p.Close()
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", mapErr(err))
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
