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
			goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true), goose.WithGoMigrations(goMigrations()...))
		return p, func() {}, err
	}, mapErr)
}

// goMigrations are the migrations written in Go (migrate's), with this dialect's SQL. Made anew for
// each provider: goose links the ones it is given.
func goMigrations() []*goose.Migration {
	return []*goose.Migration{migrate.EmailKeys(migrate.EmailKeyDDL{
		Before: []string{
			`ALTER TABLE users ADD COLUMN email_key TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE users ADD COLUMN email_verified_at TEXT`,
			`ALTER TABLE identities ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0`,
			`DROP INDEX idx_users_email`,
		},
		SetKey: `UPDATE users SET email_key = ?1 WHERE id = ?2`,
		// The email column keeps its COLLATE NOCASE, which no longer decides anything.
		After: []string{`CREATE UNIQUE INDEX idx_users_email ON users (email_key)`},
		Down: []string{
			`DROP INDEX idx_users_email`,
			`ALTER TABLE identities DROP COLUMN email_verified`,
			`ALTER TABLE users DROP COLUMN email_verified_at`,
			`ALTER TABLE users DROP COLUMN email_key`,
			`CREATE UNIQUE INDEX idx_users_email ON users (email)`,
		},
	})}
}

// LatestSchemaVersion is the version of the newest migration embedded in the binary.
func LatestSchemaVersion() int64 { return migrate.Latest(migrate.Files(migrations), goMigrations()...) }
