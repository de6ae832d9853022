package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fluxstudio/fluxauth"
	"github.com/google/uuid"
)

func insertEvents(ctx context.Context, q querier, db *DB, events []*fluxauth.SecurityEvent) error {
	if len(events) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO security_events
		(id, event_type, severity, user_id, token_id, ip_address, user_agent, metadata, created_at) VALUES `)
	args := make([]any, 0, 9*len(events))
	for i, e := range events {
		if e.ID == "" {
			e.ID = uuid.Must(uuid.NewV7()).String()
		}
		if e.Severity == "" {
			e.Severity = fluxauth.SeverityInfo
		}
		if e.CreatedAt.IsZero() {
			e.CreatedAt = db.Now()
		}
		var meta any
		if e.Metadata != nil {
			m, err := json.Marshal(e.Metadata)
			if err != nil {
				return fmt.Errorf("postgres: event metadata: %w", err)
			}
			meta = string(m)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		n := len(args)
		b.WriteString("(")
		for j := 1; j <= 9; j++ {
			if j > 1 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(n+j))
		}
		b.WriteString(")")
		args = append(args, e.ID, e.Type, e.Severity, nullString(e.UserID), nullString(e.TokenID),
			nullString(e.IPAddress), nullString(e.UserAgent), meta, ts(e.CreatedAt))
	}
	_, err := q.Exec(ctx, b.String(), args...)
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
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Type != "" {
		where = append(where, "event_type = "+arg(f.Type))
	}
	if f.Severity != "" {
		where = append(where, "severity = "+arg(f.Severity))
	}
	if f.UserID != "" {
		where = append(where, "user_id = "+arg(f.UserID))
	}
	if f.IP != "" {
		where = append(where, "ip_address = "+arg(f.IP))
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= "+arg(ts(f.Since)))
	}
	if !f.Until.IsZero() {
		where = append(where, "created_at < "+arg(ts(f.Until)))
	}
	if !f.BeforeTime.IsZero() {
		if f.BeforeID != "" {
			if !isUUID(f.BeforeID) {
				return nil, fmt.Errorf("postgres: event cursor id %q is not a UUID", f.BeforeID)
			}
			where = append(where, "(created_at, id) < ("+arg(ts(f.BeforeTime))+", "+arg(f.BeforeID)+")")
		} else {
			where = append(where, "created_at < "+arg(ts(f.BeforeTime)))
		}
	}
	query := `SELECT id::text, event_type, severity, COALESCE(user_id, ''), COALESCE(token_id::text, ''),
		COALESCE(ip_address, ''), COALESCE(user_agent, ''), metadata, created_at FROM security_events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		query += " LIMIT " + arg(f.Limit)
	}
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
