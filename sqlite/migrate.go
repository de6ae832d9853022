package sqlite

import (
	"embed"

	"github.com/pressly/goose/v3"

	"github.com/fluxstudio/fluxauth/internal/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationTable records applied migrations.
const MigrationTable = migrate.Table

// MigrationStatus describes one migration embedded in the binary.
type MigrationStatus = migrate.Status

// migrator names migrate.Migrator as an unexported field of DB, whose methods (MigrateUp,
// MigrateDown, MigrateDownTo, MigrationStatus, SchemaVersion) DB gains.
type migrator = migrate.Migrator

func newMigrator(db *DB) migrator {
	return migrate.New("sqlite", func() (*goose.Provider, func(), error) {
		// The provider runs on the writer, so migrations queue behind (and ahead of) ordinary
		// writes. It is never closed: Provider.Close would close the writer.
		p, err := goose.NewProvider(goose.DialectSQLite3, db.writer, migrate.Files(migrations),
			goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true))
		return p, func() {}, err
	}, mapErr)
}

// LatestSchemaVersion is the version of the newest migration embedded in the binary.
func LatestSchemaVersion() int64 { return migrate.Latest(migrate.Files(migrations)) }
