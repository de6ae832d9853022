// Package migrate runs a dialect's embedded SQL migrations with goose, the same way for every
// store: version table schema_migrations, each migration in its own transaction, results named by
// file.
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

// Migrator runs one store's migrations.
type Migrator struct {
	// Dialect names the store in errors ("sqlite", "postgres").
	Dialect string
	// Provider returns a goose provider and what releases it.
	Provider func() (*goose.Provider, func(), error)
	// MapErr turns driver errors into the store's (e.g. wrapping fluxauth.ErrUnavailable).
	MapErr func(error) error
}

func (m Migrator) run(ctx context.Context, what string, fn func(p *goose.Provider) error) error {
	p, release, err := m.Provider()
	if err != nil {
		return err
	}
	defer release()
	if err := fn(p); err != nil {
		return fmt.Errorf("%s: %s: %w", m.Dialect, what, m.MapErr(err))
	}
	return nil
}

// Up applies every pending migration and returns the names of those it applied.
func (m Migrator) Up(ctx context.Context) ([]string, error) {
	var names []string
	err := m.run(ctx, "migrate up", func(p *goose.Provider) error {
		res, err := p.Up(ctx)
		names = resultNames(res)
		return err
	})
	return names, err
}

// Down rolls back the most recently applied migration and returns its name; "" when none is.
func (m Migrator) Down(ctx context.Context) (string, error) {
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

// DownTo rolls back every migration above version (0: all) and returns their names, newest first.
func (m Migrator) DownTo(ctx context.Context, version int64) ([]string, error) {
	var names []string
	err := m.run(ctx, fmt.Sprintf("migrate down to %d", version), func(p *goose.Provider) error {
		res, err := p.DownTo(ctx, version)
		names = resultNames(res)
		return err
	})
	return names, err
}

// Status lists every embedded migration in version order, with when it was applied.
func (m Migrator) Status(ctx context.Context) ([]Status, error) {
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

// Version returns the version of the newest applied migration, 0 when none is.
func (m Migrator) Version(ctx context.Context) (int64, error) {
	var v int64
	err := m.run(ctx, "schema version", func(p *goose.Provider) error {
		var err error
		v, err = p.GetDBVersion(ctx)
		return err
	})
	return v, err
}

// Latest is the version of the newest migration file in fsys.
func Latest(fsys fs.FS) int64 {
	entries, _ := fs.Glob(fsys, "*.sql")
	var latest int64
	for _, e := range entries {
		if v, err := goose.NumericComponent(path.Base(e)); err == nil && v > latest {
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
