// Package postgres is fluxauth's production storage backend: it implements fluxauth.Store on
// PostgreSQL with pgx (a pgxpool on the hot path) and owns that database's schema migrations.
//
// Several fluxauth instances share one database. Operations on one session's rotation chain are
// serialised with a transaction-scoped advisory lock on the session (LockSession), and Update retries
// the whole transaction on deadlock or serialization failure, so callers never see either.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/sqlq"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ fluxauth.Backend = (*DB)(nil)

// shared names sqlq.Store as an unexported field of DB, whose methods DB gains.
type shared = sqlq.Store

// DB is a fluxauth.Store on a PostgreSQL database.
type DB struct {
	shared
	migrator
	pool *pgxpool.Pool

	// Now stamps events inserted without a CreatedAt. It defaults to the system clock in UTC.
	Now func() time.Time
}

// Open connects to the database at url (postgres://… or key=value form; pool settings such as
// pool_max_conns go in the URL, which otherwise defaults to 16 or 4 per CPU) and checks that it answers. A server that cannot be reached gives an
// error wrapping fluxauth.ErrUnavailable. Open does not migrate: call MigrateUp.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The message of a parse error may quote the URL, password included.
		return nil, errors.New("postgres: invalid database URL")
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default (the number of CPUs, at least 4) keeps a refresh waiting for another's
		// commit flush; with more transactions in flight PostgreSQL flushes their commits together.
		// Measured on 2 cores: 4 connections 1,250 refreshes/s, 16 connections 2,100/s.
		cfg.MaxConns = int32(max(16, 4*runtime.GOMAXPROCS(0)))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, mapErr(err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, unavailable(err)
	}
	db := &DB{pool: pool, Now: func() time.Time { return time.Now().UTC() }}
	db.shared = sqlq.NewStore(dialect, conn{pool}, conn{pool}, func() time.Time { return db.Now() })
	db.migrator = newMigrator(db)
	return db, nil
}

// Close closes every connection of the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return unavailable(err)
	}
	return nil
}

// Pool returns the connection pool, for tools (load tests, cleanup jobs) that need SQL the Store
// interface does not offer.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// maxAttempts bounds Update's retries on deadlock and serialization failure. Both are rare (the
// session lock orders writers of one chain) and clear at once, so a few attempts suffice.
const maxAttempts = 5

// Update runs fn in one transaction and commits when fn returns nil. On a deadlock or serialization
// failure it rolls back and runs fn again, so fn must have no effects outside tx.
func (db *DB) Update(ctx context.Context, fn func(tx fluxauth.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.update(ctx, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		// Jittered so that the transactions that collided do not collide again.
		backoff := time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

func (db *DB) update(ctx context.Context, fn func(tx fluxauth.Tx) error) error {
	c, err := db.pool.Acquire(ctx)
	if err != nil {
		return mapErr(err)
	}
	defer c.Release()
	lt := &lazyTx{conn: c}
	// After commit this is a no-op; after a failure or a panic in fn it ends the transaction even if
	// ctx is already cancelled.
	defer lt.rollback(context.WithoutCancel(ctx))
	if err := fn(&tx{Tx: sqlq.NewTx(dialect, conn{lt}, db.Now), q: lt}); err != nil {
		return err
	}
	return mapErr(lt.commit(ctx))
}

// tx is the fluxauth.Tx of Update: the shared statements, and the dialect's own on q.
type tx struct {
	sqlq.Tx
	q querier
}

var _ fluxauth.Tx = (*tx)(nil)

// LockSession takes a transaction-scoped advisory lock keyed by a 64-bit hash of the session ID.
// A hash collision only makes two sessions wait for each other, never corrupts either.
func (t *tx) LockSession(ctx context.Context, sessionID string) error {
	_, err := t.q.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, sessionID)
	return mapErr(err)
}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// dialect is how PostgreSQL takes arguments: $n placeholders, and times in UTC truncated to
// microseconds, its precision (truncated, not rounded, as the sqlite store keeps them). Its ID
// columns are UUIDs, and cleanup passes over rows that a refresh or a revocation holds.
var dialect = sqlq.Dialect{
	Param:       '$',
	Time:        func(t time.Time) any { return t.UTC().Truncate(time.Microsecond) },
	UUIDs:       true,
	SkipLocked:  " FOR UPDATE SKIP LOCKED",
	ForUpdate:   " FOR UPDATE",
	Strpos:      "strpos",
	UnixSeconds: `FLOOR(EXTRACT(EPOCH FROM %s))::BIGINT`,
}

// conn runs the shared statements of sqlq on q, mapping the driver's errors.
type conn struct{ q querier }

var _ sqlq.Querier = conn{}

func (c conn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := c.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), mapErr(err)
}

func (c conn) QueryRow(ctx context.Context, query string, args ...any) sqlq.Scanner {
	return row{c.q.QueryRow(ctx, query, args...)}
}

func (c conn) Query(ctx context.Context, query string, args []any, fn func(sqlq.Scanner) error) error {
	// A failed Query returns rows that report its error; CollectRows closes them and returns the
	// first error of the query, of fn or of reading the rows.
	rows, _ := c.q.Query(ctx, query, args...)
	_, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) { return struct{}{}, fn(row) })
	return mapErr(err)
}

// row maps the errors of a single-row query.
type row struct{ r pgx.Row }

func (r row) Scan(dest ...any) error { return mapErr(r.r.Scan(dest...)) }

// isUUID guards lookups by UUID columns: any other string cannot match, and PostgreSQL would
// reject it with an error instead of finding nothing.
func isUUID(s string) bool { return uuid.Validate(s) == nil }

// mapErr turns driver errors into the store's sentinel errors.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fluxauth.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: %s (%s)", fluxauth.ErrConflict, pgErr.Message, pgErr.ConstraintName)
		case pgErr.Code[:2] == "22", pgErr.Code[:2] == "23", // data exception, integrity constraint
			pgErr.Code[:2] == "54": // program limit exceeded (a value or a statement too large)
			return fmt.Errorf("%w: %w", fluxauth.ErrInvalidData, err)
		case pgErr.Code[:2] == "08", // connection exception
			pgErr.Code == "53300",                        // too many connections
			pgErr.Code == "57P01", pgErr.Code == "57P02", // admin or crash shutdown
			pgErr.Code == "57P03": // cannot connect now (starting up)
			return unavailable(err)
		}
		return err
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	// ErrConnClosed: a statement on a connection an earlier failure closed (a lost server).
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return unavailable(err)
	}
	return err
}

// unavailable wraps a failure to reach the server.
func unavailable(err error) error {
	if errors.Is(err, fluxauth.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: postgres: %v", fluxauth.ErrUnavailable, err)
}

// retryable reports a deadlock (40P01) or serialization failure (40001) anywhere in err's chain.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// ImportUsers is fluxauth.UserImporter: a batch in one transaction, run again from its start on a
// deadlock or serialization failure like every Update.
func (db *DB) ImportUsers(ctx context.Context, batch []fluxauth.ImportedUser, opt fluxauth.ImportOptions) ([]fluxauth.ImportResult, error) {
	return sqlq.ImportUsers(ctx, db.Update, batch, opt)
}
