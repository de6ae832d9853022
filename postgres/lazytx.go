package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lazyTx is the transaction of Update on one pooled connection. It sends BEGIN together with its
// first statement, as one pipeline, instead of waiting for BEGIN's answer first: a round trip less
// for every transaction, a quarter of a refresh's (BEGIN, read and lock, rotate, COMMIT).
type lazyTx struct {
	conn  *pgxpool.Conn
	begun bool
}

var _ querier = (*lazyTx)(nil)

// start sends BEGIN and the first statement in one batch, and returns the batch with BEGIN's result
// read; the caller reads the statement's and closes it.
func (t *lazyTx) start(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	t.begun = true
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(sql, args...)
	br := t.conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, err
	}
	return br, nil
}

func (t *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.begun {
		return t.conn.Exec(ctx, sql, args...)
	}
	br, err := t.start(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	return tag, finish(br, err)
}

func (t *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.begun {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	br, err := t.start(ctx, sql, args)
	if err != nil {
		return errRow{err}
	}
	return batchRow{br}
}

func (t *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.begun {
		return t.conn.Query(ctx, sql, args...)
	}
	br, err := t.start(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// commit ends the transaction; one that never ran a statement has nothing to commit. A transaction
// that failed before COMMIT is rolled back by it, and PostgreSQL answers ROLLBACK rather than an
// error: that is pgx.ErrTxCommitRollback, as pgx's own Commit reports it.
func (t *lazyTx) commit(ctx context.Context) error {
	if !t.begun {
		return nil
	}
	tag, err := t.conn.Exec(ctx, "COMMIT")
	t.begun = false
	if err == nil && tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return err
}

// rollback ends a transaction that was not committed. When ROLLBACK cannot be sent, the connection
// is left in its transaction, and the pool closes it on release rather than reuse it.
func (t *lazyTx) rollback(ctx context.Context) {
	if t.begun {
		t.conn.Exec(ctx, "ROLLBACK")
	}
}

// finish closes the batch after its statement returned err, and returns err, or else the batch's
// own error.
func finish(br pgx.BatchResults, err error) error {
	cerr := br.Close()
	if err != nil {
		return err
	}
	return cerr
}

// batchRow is the first statement's row: reading it closes the batch.
type batchRow struct{ br pgx.BatchResults }

func (r batchRow) Scan(dest ...any) error {
	return finish(r.br, r.br.QueryRow().Scan(dest...))
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// batchRows are the first statement's rows: closing them closes the batch. Their own error comes
// first.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.br.Close()
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}
