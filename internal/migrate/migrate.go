// Package migrate runs a dialect's embedded SQL migrations with goose, the same way for every
// store: version table schema_migrations, each migration in its own transaction, results named by
// file. It also holds the Go migrations, written once for every dialect, for what SQL cannot do
// (008_users_email_key.go).
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/pressly/goose/v3"
)

// Table records applied migrations.
const Table = "schema_migrations"

// Status describes one migration embedded in the binary.
type Status struct {
	Version   int64
	Name      string // file name, e.g. "001_create_refresh_tokens.sql"
	Applied   bool
	AppliedAt time.Time // zero while pending
}

// Migrator runs one store's migrations. A store embeds it to gain its methods.
type Migrator struct {
	dialect  string
	provider func() (*goose.Provider, func(), error)
	mapErr   func(error) error
}

// New returns the Migrator of a store: dialect names it in errors ("sqlite", "postgres"), provider
// returns a goose provider and what releases it, and mapErr turns driver errors into the store's
// (e.g. wrapping fluxauth.ErrUnavailable).
func New(dialect string, provider func() (*goose.Provider, func(), error), mapErr func(error) error) Migrator {
	return Migrator{dialect: dialect, provider: provider, mapErr: mapErr}
}

// Files returns the migration files of a store, embedded in the folder migrations of fsys.
func Files(fsys fs.FS) fs.FS {
	sub, err := fs.Sub(fsys, "migrations")
	if err != nil {
		panic(err) // the embedded folder exists at compile time
	}
	return sub
}

func (m Migrator) run(ctx context.Context, what string, fn func(p *goose.Provider) error) error {
	p, release, err := m.provider()
	if err != nil {
		return err
	}
	defer release()
	if err := fn(p); err != nil {
		return fmt.Errorf("%s: %s: %w", m.dialect, what, m.mapErr(err))
	}
	return nil
}

// MigrateUp applies every pending migration, each in its own transaction, and returns the names
// of those it applied.
func (m Migrator) MigrateUp(ctx context.Context) ([]string, error) {
	var names []string
	err := m.run(ctx, "migrate up", func(p *goose.Provider) error {
		res, err := p.Up(ctx)
		names = resultNames(res)
		return err
	})
	return names, err
}

// MigrateDown rolls back the most recently applied migration and returns its name; "" when none
// is applied.
func (m Migrator) MigrateDown(ctx context.Context) (string, error) {
	var name string
	err := m.run(ctx, "migrate down", func(p *goose.Provider) error {
		res, err := p.Down(ctx)
		if errors.Is(err, goose.ErrNoNextVersion) {
			return nil
		}
		if err == nil {
			name = path.Base(res.Source.Path)
		}
		return err
	})
	return name, err
}

// MigrateDownTo rolls back every migration above version (0 rolls back all of them) and returns
// their names, newest first.
func (m Migrator) MigrateDownTo(ctx context.Context, version int64) ([]string, error) {
	var names []string
	err := m.run(ctx, fmt.Sprintf("migrate down to %d", version), func(p *goose.Provider) error {
		res, err := p.DownTo(ctx, version)
		names = resultNames(res)
		return err
	})
	return names, err
}

// MigrationStatus lists every embedded migration in version order, with when it was applied.
func (m Migrator) MigrationStatus(ctx context.Context) ([]Status, error) {
	var out []Status
	err := m.run(ctx, "migration status", func(p *goose.Provider) error {
		st, err := p.Status(ctx)
		for _, s := range st {
			ms := Status{Version: s.Source.Version, Name: path.Base(s.Source.Path), Applied: s.State == goose.StateApplied}
			if ms.Applied {
				ms.AppliedAt = s.AppliedAt.UTC()
			}
			out = append(out, ms)
		}
		return err
	})
	return out, err
}

// SchemaVersion returns the version of the newest applied migration, 0 when none is.
func (m Migrator) SchemaVersion(ctx context.Context) (int64, error) {
	var v int64
	err := m.run(ctx, "schema version", func(p *goose.Provider) error {
		var err error
		v, err = p.GetDBVersion(ctx)
		return err
	})
	return v, err
}

// Latest is the version of the newest migration: of the SQL files in fsys and of the Go migrations.
func Latest(fsys fs.FS, goMigrations ...*goose.Migration) int64 {
	entries, _ := fs.Glob(fsys, "*.sql")
	var latest int64
	for _, e := range entries {
		if v, err := goose.NumericComponent(path.Base(e)); err == nil && v > latest {
			latest = v
		}
	}
	for _, m := range goMigrations {
		latest = max(latest, m.Version)
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
