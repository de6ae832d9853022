package postgres

import (
	"embed"

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

// migrator names migrate.Migrator as an unexported field of DB, whose methods (MigrateUp,
// MigrateDown, MigrateDownTo, MigrationStatus, SchemaVersion) DB gains. Instances migrating at
// once take turns on an advisory lock.
type migrator = migrate.Migrator

func newMigrator(db *DB) migrator {
	return migrate.New("postgres", func() (*goose.Provider, func(), error) {
		// Poll for the lock every second, for up to ten minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 600))
		if err != nil {
			return nil, nil, err
		}
		// A database/sql view of the pool; closing the provider releases the view, not the pool.
		sqlDB := stdlib.OpenDBFromPool(db.pool)
		p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrate.Files(migrations),
			goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker),
			goose.WithGoMigrations(goMigrations()...))
		if err != nil {
			sqlDB.Close()
			return nil, nil, err
		}
		return p, func() { p.Close() }, nil
	}, mapErr)
}

// goMigrations are the migrations written in Go (migrate's), with this dialect's SQL. Made anew for
// each provider: goose links the ones it is given.
func goMigrations() []*goose.Migration {
	return []*goose.Migration{migrate.EmailKeys(migrate.EmailKeyDDL{
		Before: []string{
			`ALTER TABLE users ADD COLUMN email_key TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMPTZ`,
			`ALTER TABLE identities ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE`,
			`DROP INDEX idx_users_email`,
		},
		SetKey: `UPDATE users SET email_key = $1 WHERE id = $2`,
		// Without a default, an insert that forgets the key fails rather than claim ''.
		After: []string{
			`ALTER TABLE users ALTER COLUMN email_key DROP DEFAULT`,
			`CREATE UNIQUE INDEX idx_users_email ON users (email_key)`,
		},
		Down: []string{
			`DROP INDEX idx_users_email`,
			`ALTER TABLE identities DROP COLUMN email_verified`,
			`ALTER TABLE users DROP COLUMN email_verified_at, DROP COLUMN email_key`,
			`CREATE UNIQUE INDEX idx_users_email ON users (lower(email COLLATE "C"))`,
		},
	})}
}

// LatestSchemaVersion is the version of the newest migration embedded in the binary.
func LatestSchemaVersion() int64 { return migrate.Latest(migrate.Files(migrations), goMigrations()...) }
