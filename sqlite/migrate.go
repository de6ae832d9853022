package sqlite

import (
	"context"
	"embed"
	"io/fs"

	"github.com/pressly/goose/v3"

	"github.com/fluxstudio/fluxauth/internal/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationTable records applied migrations.
const MigrationTable = migrate.Table

// MigrationStatus describes one migration embedded in the binary.
type MigrationStatus = migrate.Status

func migrationFiles() fs.FS {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded folder exists at compile time
	}
	return fsys
}

func (db *DB) migrator() migrate.Migrator {
	return migrate.Migrator{
		Dialect: "sqlite",
		MapErr:  mapErr,
		Provider: func() (*goose.Provider, func(), error) {
			// The provider runs on the writer, so migrations queue behind (and ahead of) ordinary
			// writes. It is never closed: Provider.Close would close the writer.
			p, err := goose.NewProvider(goose.DialectSQLite3, db.writer, migrationFiles(),
				goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true))
			return p, func() {}, err
		},
	}
}

// MigrateUp applies every pending migration, each in its own transaction, and returns the names of
// those it applied.
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
