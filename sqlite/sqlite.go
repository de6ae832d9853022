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
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/sqlq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ fluxauth.Backend = (*DB)(nil)

// shared names sqlq.Store as an unexported field of DB, whose methods DB gains.
type shared = sqlq.Store

// DB is a fluxauth.Store on one SQLite file.
type DB struct {
	shared
	migrator
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
		if err := ownerOnly(path); err != nil {
			return nil, err
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
	db.shared = sqlq.NewStore(dialect, conn{db.reader}, conn{db.writer}, func() time.Time { return db.Now() })
	db.migrator = newMigrator(db)
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

// ownerOnly makes the database at path readable by its owner only: it holds password hashes. SQLite
// creates the -wal and -shm files with the database file's mode (which would otherwise be 0644), so
// creating that file 0600 before SQLite opens it covers all three. A database, -wal or -shm that
// exists with permissions for others (made before this rule) is tightened to its owner's.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: sqlite: %v", fluxauth.ErrUnavailable, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("%w: sqlite: %v", fluxauth.ErrUnavailable, err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&^0o077); err != nil {
				return fmt.Errorf("sqlite: %s is open to other users (mode %#o) and could not be restricted to its owner: %w", p, perm, err)
			}
		}
	}
	return nil
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
	if err := fn(&tx{Tx: sqlq.NewTx(dialect, conn{sqlTx}, db.Now), q: sqlTx}); err != nil {
		return err
	}
	return mapErr(sqlTx.Commit())
}

// tx is the fluxauth.Tx of Update: the shared statements, and the dialect's own on q.
type tx struct {
	sqlq.Tx
	q querier
}

var _ fluxauth.Tx = (*tx)(nil)

// LockSession does nothing: the single writer connection already runs transactions one at a time.
func (t *tx) LockSession(ctx context.Context, sessionID string) error { return nil }

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// dialect is how SQLite takes arguments: numbered ?n placeholders, and times as sqlq.TimeText, which
// sorts as the times do.
var dialect = sqlq.Dialect{
	Param: '?',
	Time:  func(t time.Time) any { return sqlq.TimeText(t) },
	// strftime reads sqlq.TimeText, fraction and Z included, and truncates to the second.
	Strpos:      "instr",
	UnixSeconds: `CAST(strftime('%%s', %s) AS INTEGER)`,
}

// conn runs the shared statements of sqlq on q, mapping the driver's errors.
type conn struct{ q querier }

var _ sqlq.Querier = conn{}

func (c conn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	n, err := res.RowsAffected()
	return n, mapErr(err)
}

func (c conn) QueryRow(ctx context.Context, query string, args ...any) sqlq.Scanner {
	return row{c.q.QueryRowContext(ctx, query, args...)}
}

func (c conn) Query(ctx context.Context, query string, args []any, fn func(sqlq.Scanner) error) error {
	rows, err := c.q.QueryContext(ctx, query, args...)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return mapErr(err)
		}
	}
	return mapErr(rows.Err())
}

// row maps the errors of a single-row query.
type row struct{ r *sql.Row }

func (r row) Scan(dest ...any) error { return mapErr(r.r.Scan(dest...)) }

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
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
			return fmt.Errorf("%w: %w", fluxauth.ErrInvalidData, err)
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

// ImportUsers is fluxauth.UserImporter: a batch in one write transaction.
func (db *DB) ImportUsers(ctx context.Context, batch []fluxauth.ImportedUser, opt fluxauth.ImportOptions) ([]fluxauth.ImportResult, error) {
	return sqlq.ImportUsers(ctx, db.Update, batch, opt)
}
