package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/sqlq"
)

// dialect is how PostgreSQL takes arguments: $n placeholders and times at microsecond precision.
var dialect = sqlq.Dialect{Placeholder: func(n int) string { return "$" + strconv.Itoa(n) }, Time: func(t time.Time) any { return ts(t) }}

func insertEvents(ctx context.Context, q querier, db *DB, events []*fluxauth.SecurityEvent) error {
	if len(events) == 0 {
		return nil
	}
	query, args, err := sqlq.InsertEvents(dialect, events, db.Now)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	_, err = q.Exec(ctx, query, args...)
	return mapErr(err)
}

// InsertEvents appends events to the audit log in one statement. Events without an ID, a severity or
// a time get a UUIDv7, "info" and db.Now().
func (db *DB) InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	return insertEvents(ctx, db.pool, db, events)
}

func (t *tx) InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	return insertEvents(ctx, t.q, t.db, events)
}

// ListEvents returns the events matching f, newest first by (CreatedAt, ID). A Limit of 0 returns
// every match; BeforeID is only used together with BeforeTime, and must be a UUID.
func (db *DB) ListEvents(ctx context.Context, f fluxauth.EventFilter) ([]*fluxauth.SecurityEvent, error) {
	if !f.BeforeTime.IsZero() && f.BeforeID != "" && !isUUID(f.BeforeID) {
		return nil, fmt.Errorf("postgres: event cursor id %q is not a UUID", f.BeforeID)
	}
	query, args := sqlq.ListEvents(dialect, `id::text, event_type, severity, COALESCE(user_id, ''), COALESCE(token_id::text, ''),
		COALESCE(ip_address, ''), COALESCE(user_agent, ''), metadata, created_at`, f)
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []*fluxauth.SecurityEvent
	for rows.Next() {
		var e fluxauth.SecurityEvent
		var meta []byte
		if err := rows.Scan(&e.ID, &e.Type, &e.Severity, &e.UserID, &e.TokenID, &e.IPAddress, &e.UserAgent,
			&meta, &e.CreatedAt); err != nil {
			return nil, mapErr(err)
		}
		if meta != nil {
			if err := json.Unmarshal(meta, &e.Metadata); err != nil {
				return nil, fmt.Errorf("postgres: event %s metadata: %w", e.ID, err)
			}
		}
		e.CreatedAt = e.CreatedAt.UTC()
		out = append(out, &e)
	}
	return out, mapErr(rows.Err())
}
