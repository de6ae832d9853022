// Package sqlq holds the SQL that both stores write alike, apart from what their Dialect says:
// how a placeholder looks, how a time is passed, whether UUID columns are typed. Store and Tx
// implement the methods of fluxauth.Store and fluxauth.Tx made of those statements; each store
// embeds them and adds what is its own (opening, transactions, locking, rotation, exclusive jobs).
//
// Shared statements are written with PostgreSQL's $n placeholders, which rebind turns into a
// dialect's. Rows are read through scan destinations that accept what either driver hands over (a
// UUID as a string, a time as a time.Time or as TimeText, NULL), so the select lists need no casts
// and no COALESCE.
package sqlq

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// Dialect says how a store's database differs where the shared statements care.
type Dialect struct {
	// Param followed by an argument's number (from 1) is its placeholder: '$' for PostgreSQL, '?'
	// for SQLite.
	Param byte
	// Time passes a time as an argument.
	Time func(time.Time) any
	// UUIDs is set when the IDs fluxauth makes (sessions, tokens, events, mail) are in columns typed
	// UUID: the database fails a comparison with anything else, so the shared methods answer for
	// such an ID as for one that does not exist. User IDs are text in every store.
	UUIDs bool
	// SkipLocked is appended to a cleanup batch's row selection so that the batch passes over rows
	// a transaction holds rather than wait for them (" FOR UPDATE SKIP LOCKED"; "" where writes
	// are serial anyway).
	SkipLocked string
	// ForUpdate is appended to a select that must hold its rows until the transaction ends
	// (" FOR UPDATE"; "" where write transactions already run one at a time).
	ForUpdate string
	// UnixSeconds is a format (fmt, one %s: a column) for the whole Unix seconds of a time column,
	// as an integer.
	UnixSeconds string
	// Strpos is the function giving the 1-based position of a substring in a string, 0 when absent,
	// called as Strpos(string, substring): "strpos" for PostgreSQL, "instr" for SQLite.
	Strpos string
}

// Store implements, with the shared statements, the methods of fluxauth.Store, AdminStore and
// CleanupStore that are the same for every dialect. A store embeds it.
type Store struct {
	d     Dialect
	read  Querier
	write Querier
	now   func() time.Time
}

// NewStore returns the shared methods of a store that reads through read and writes through write
// (the same Querier where one pool does both), stamping events inserted without a time with now().
func NewStore(d Dialect, read, write Querier, now func() time.Time) Store {
	return Store{d: d, read: read, write: write, now: now}
}

// Tx implements the methods of fluxauth.Tx that are the same for every dialect. A store's
// transaction embeds it.
type Tx struct {
	d   Dialect
	q   Querier
	now func() time.Time
}

// NewTx returns the shared methods of a transaction running on q.
func NewTx(d Dialect, q Querier, now func() time.Time) Tx { return Tx{d: d, q: q, now: now} }

func (s Store) reader() Tx { return Tx{s.d, s.read, s.now} }
func (s Store) writer() Tx { return Tx{s.d, s.write, s.now} }

// badID reports an ID of fluxauth's own making (never a user ID) that the database cannot hold, and
// so cannot find.
func (d Dialect) badID(id string) bool { return d.UUIDs && uuid.Validate(id) != nil }

func (d Dialect) placeholder(n int) string { return string(d.Param) + strconv.Itoa(n) }

// rebind rewrites query's $n placeholders into d's. query must hold no other '$' followed by a
// digit: the shared statements use no dollar-quoted strings.
func (d Dialect) rebind(query string) string {
	if d.Param == '$' {
		return query
	}
	b := []byte(query)
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '$' && '0' <= b[i+1] && b[i+1] <= '9' {
			b[i] = d.Param
		}
	}
	return string(b)
}

// nullTime passes the zero time as NULL, for the columns where zero means "not yet".
func (d Dialect) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.Time(t)
}

// nullString passes "" as NULL, for the optional text columns.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Scanner is a row as both drivers hand it over.
type Scanner interface{ Scan(dest ...any) error }

// Querier runs statements on one store's pool or transaction. Its errors are the store's own
// (fluxauth.ErrNotFound for no row, ErrConflict, ErrUnavailable), already mapped from the driver's.
type Querier interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	QueryRow(ctx context.Context, query string, args ...any) Scanner
	// Query calls fn with each row of the result in turn, and stops at fn's first error.
	Query(ctx context.Context, query string, args []any, fn func(Scanner) error) error
}

// timeText is fixed-width, so that comparing times stored as TEXT orders them correctly.
const timeText = "2006-01-02T15:04:05.000000Z"

// TimeText is how a database without a time type (SQLite) stores t: in UTC, to the microsecond,
// in a fixed width so that comparing the text orders the times.
func TimeText(t time.Time) string { return t.UTC().Format(timeText) }

// scanText returns a scan destination for a text or UUID column that may be NULL: NULL reads as "".
func scanText(s *string) sql.Scanner { return text{s} }

type text struct{ s *string }

func (t text) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t.s = ""
	case string:
		*t.s = v
	case []byte:
		*t.s = string(v)
	default:
		return fmt.Errorf("text column holds %T", src)
	}
	return nil
}

// scanTime returns a scan destination for a time column that may be NULL: a time.Time or TimeText
// reads as that time in UTC, NULL as the zero time.
func scanTime(t *time.Time) sql.Scanner { return timeDest{t} }

type timeDest struct{ t *time.Time }

func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.t = time.Time{}
	case time.Time:
		*d.t = v.UTC()
	case string:
		t, err := time.Parse(timeText, v)
		if err != nil {
			return fmt.Errorf("bad stored time %q: %w", v, err)
		}
		*d.t = t
	default:
		return fmt.Errorf("time column holds %T", src)
	}
	return nil
}

// AffectedOne turns a statement that changed no row into fluxauth.ErrNotFound.
func AffectedOne(n int64, err error) error {
	if err == nil && n == 0 {
		return fluxauth.ErrNotFound
	}
	return err
}
