package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/sqlq"
)

// dialect is how SQLite takes arguments: ? placeholders and times as sortable text.
var dialect = sqlq.Dialect{Placeholder: func(int) string { return "?" }, Time: func(t time.Time) any { return formatTime(t) }}

func insertEvents(ctx context.Context, q querier, db *DB, events []*fluxauth.SecurityEvent) error {
	if len(events) == 0 {
		return nil
	}
	query, args, err := sqlq.InsertEvents(dialect, events, db.Now)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	_, err = q.ExecContext(ctx, query, args...)
	return mapErr(err)
}

// InsertEvents appends events to the audit log in one statement. Events without an ID, a severity or
// a time get a UUIDv7, "info" and db.Now().
func (db *DB) InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	return insertEvents(ctx, db.writer, db, events)
}

func (t *tx) InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	return insertEvents(ctx, t.q, t.db, events)
}

// ListEvents returns the events matching f, newest first by (CreatedAt, ID). A Limit of 0 returns
// every match; BeforeID is only used together with BeforeTime.
func (db *DB) ListEvents(ctx context.Context, f fluxauth.EventFilter) ([]*fluxauth.SecurityEvent, error) {
	query, args := sqlq.ListEvents(dialect, `id, event_type, severity, COALESCE(user_id, ''), COALESCE(token_id, ''),
		COALESCE(ip_address, ''), COALESCE(user_agent, ''), metadata, created_at`, f)
	rows, err := db.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []*fluxauth.SecurityEvent
	for rows.Next() {
		var e fluxauth.SecurityEvent
		var meta *string
		var created string
		if err := rows.Scan(&e.ID, &e.Type, &e.Severity, &e.UserID, &e.TokenID, &e.IPAddress, &e.UserAgent,
			&meta, &created); err != nil {
			return nil, mapErr(err)
		}
		if meta != nil {
			if err := json.Unmarshal([]byte(*meta), &e.Metadata); err != nil {
				return nil, fmt.Errorf("sqlite: event %s metadata: %w", e.ID, err)
			}
		}
		if e.CreatedAt, err = parseTime(created); err != nil {
			return nil, err
		}
		out = append(out, &e)
	}
	return out, mapErr(rows.Err())
}
