// Package sqlite is fluxauth's embedded storage backend: it implements fluxauth.Store on one SQLite
// file (modernc.org/sqlite, no cgo) and owns that file's schema migrations.
//
// SQLite allows one writer at a time. Rather than let concurrent transactions collide and fail with
// "database is locked", the DB keeps two pools on the same file: a writer with a single connection
// whose transactions start with BEGIN IMMEDIATE, so writes queue in Go, and a reader pool that, in
// WAL mode, reads alongside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fluxstudio/fluxauth"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ fluxauth.Store = (*DB)(nil)

// DB is a fluxauth.Store on one SQLite file.
type DB struct {
	path   string
	writer *sql.DB
	reader *sql.DB
	// exclusive holds the names of the jobs TryExclusive is running.
	exclusive sync.Map

	// Now stamps events inserted without a CreatedAt. It defaults to the system clock in UTC.
	Now func() time.Time
}

// busyTimeout bounds how long a connection waits for another process (the CLI next to a running
// server) holding the write lock; inside one process the writer pool already serialises writes.
const busyTimeout = 5 * time.Second

// Open opens (creating if needed) the database at path. It does not migrate: call MigrateUp.
// A path of ":memory:" gives a private in-memory database on a single connection, for tools and
// tests that need no file; reads then queue behind writes.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite: database path %q must not contain '?'", path)
	}
	db := &DB{path: path, Now: func() time.Time { return time.Now().UTC() }}

	pragmas := url.Values{}
	pragmas.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	pragmas.Add("_pragma", "foreign_keys(1)")
	if path == ":memory:" {
		w, err := openWriter(path, pragmas)
		if err != nil {
			return nil, err
		}
		db.writer, db.reader = w, w
	} else {
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("%w: sqlite: %v", fluxauth.ErrUnavailable, err)
			}
		}
		pragmas.Add("_pragma", "journal_mode(WAL)")
		pragmas.Add("_pragma", "synchronous(NORMAL)")

		w, err := openWriter(path, pragmas)
		if err != nil {
			return nil, err
		}
		db.writer = w

		rp := cloneValues(pragmas)
		rp.Add("_pragma", "query_only(1)")
		r, err := sql.Open("sqlite", path+"?"+rp.Encode())
		if err != nil {
			w.Close()
			return nil, err
		}
		n := max(4, runtime.GOMAXPROCS(0))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		db.reader = r
	}
	// The writer connects first so that it creates the file and switches it to WAL before any reader.
	if err := db.writer.PingContext(ctx); err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	if err := db.reader.PingContext(ctx); err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	return db, nil
}

// openWriter opens the pool of the one connection that writes. Its transactions begin IMMEDIATE,
// taking the write lock at once, so that they queue here rather than fail on upgrading a read lock.
// The connection is never closed while idle: for ":memory:" it is the database.
func openWriter(path string, pragmas url.Values) (*sql.DB, error) {
	wp := cloneValues(pragmas)
	wp.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wp.Encode())
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	return w, nil
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// Path returns the path the database was opened with.
func (db *DB) Path() string { return db.path }

// Close closes both pools.
func (db *DB) Close() error {
	var errs []error
	if db.reader != nil && db.reader != db.writer {
		errs = append(errs, db.reader.Close())
	}
	if db.writer != nil {
		errs = append(errs, db.writer.Close())
	}
	return errors.Join(errs...)
}

// Ping reports whether the file can be read.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.reader.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return unavailable(err)
	}
	return nil
}

// Update runs fn in one write transaction. Transactions run one at a time on the writer
// connection, so fn must use tx, never db: a write through db inside fn would wait for itself.
func (db *DB) Update(ctx context.Context, fn func(tx fluxauth.Tx) error) error {
	sqlTx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	defer sqlTx.Rollback()
	if err := fn(&tx{q: sqlTx, db: db}); err != nil {
		return err
	}
	return mapErr(sqlTx.Commit())
}

// tx is the fluxauth.Tx of Update; the reads and writes of the DB share its methods through querier.
type tx struct {
	q  querier
	db *DB
}

var _ fluxauth.Tx = (*tx)(nil)

// LockSession does nothing: the single writer connection already runs transactions one at a time.
func (t *tx) LockSession(ctx context.Context, sessionID string) error { return nil }

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type scanner interface{ Scan(dest ...any) error }

// timeFormat is fixed-width, so TEXT comparison in SQL orders times correctly.
const timeFormat = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// nullTime stores the zero time as NULL, for the columns where zero means "not yet".
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}

// parseTime reads formatTime's output; "" (a NULL read through COALESCE) is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: bad stored time %q: %w", s, err)
	}
	return t, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// mapErr turns driver errors into the store's sentinel errors.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fluxauth.ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", fluxauth.ErrConflict, err)
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %v", fluxauth.ErrUnavailable, err)
		}
	}
	if errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %v", fluxauth.ErrUnavailable, err)
	}
	return err
}

// unavailable wraps a failure to reach the file at all.
func unavailable(err error) error {
	if errors.Is(err, fluxauth.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: sqlite: %v", fluxauth.ErrUnavailable, err)
}
