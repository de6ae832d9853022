package postgres

import (
	"context"
	"embed"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/fluxstudio/fluxauth/internal/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationTable records applied migrations.
const MigrationTable = migrate.Table

// MigrationStatus describes one migration embedded in the binary.
type MigrationStatus = migrate.Status

// migrationLockID keys the session advisory lock that lets only one instance migrate at a time;
// the others wait, then find nothing left to apply.
const migrationLockID = 0x666c75786175746d // "fluxautm"

func migrationFiles() fs.FS {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded folder exists at compile time
	}
	return fsys
}

func (db *DB) migrator() migrate.Migrator {
	return migrate.Migrator{
		Dialect: "postgres",
		MapErr:  mapErr,
		Provider: func() (*goose.Provider, func(), error) {
			// Poll for the lock every second, for up to ten minutes.
			locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 600))
			if err != nil {
				return nil, nil, err
			}
			// A database/sql view of the pool; closing the provider releases the view, not the pool.
			sqlDB := stdlib.OpenDBFromPool(db.pool)
			p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrationFiles(),
				goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
			if err != nil {
				sqlDB.Close()
				return nil, nil, err
			}
			return p, func() { p.Close() }, nil
		},
	}
}

// MigrateUp applies every pending migration, each in its own transaction, and returns the names of
// those it applied. Instances migrating at once take turns on an advisory lock.
func (db *DB) MigrateUp(ctx context.Context) ([]string, error) { return db.migrator().Up(ctx) }

// MigrateDown rolls back the most recently applied migration and returns its name; "" when none
// is applied.
func (db *DB) MigrateDown(ctx context.Context) (string, error) { return db.migrator().Down(ctx) }

// MigrateDownTo rolls back every migration above version (0 rolls back all of them) and returns
// their names, newest first.
func (db *DB) MigrateDownTo(ctx context.Context, version int64) ([]string, error) {
	return db.migrator().DownTo(ctx, version)
}

// MigrationStatus lists every embedded migration in version order, with when it was applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]MigrationStatus, error) {
	return db.migrator().Status(ctx)
}

// SchemaVersion returns the version of the newest applied migration, 0 when none is.
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) { return db.migrator().Version(ctx) }

// LatestSchemaVersion is the version of the newest migration embedded in the binary.
func LatestSchemaVersion() int64 { return migrate.Latest(migrationFiles()) }
