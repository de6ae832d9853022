package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
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
				return fmt.Errorf("sqlite: event metadata: %w", err)
			}
			meta = string(m)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, e.ID, e.Type, e.Severity, nullString(e.UserID), nullString(e.TokenID),
			nullString(e.IPAddress), nullString(e.UserAgent), meta, formatTime(e.CreatedAt))
	}
	_, err := q.ExecContext(ctx, b.String(), args...)
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
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if f.Type != "" {
		add("event_type = ?", f.Type)
	}
	if f.Severity != "" {
		add("severity = ?", f.Severity)
	}
	if f.UserID != "" {
		add("user_id = ?", f.UserID)
	}
	if f.IP != "" {
		add("ip_address = ?", f.IP)
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", formatTime(f.Since))
	}
	if !f.Until.IsZero() {
		add("created_at < ?", formatTime(f.Until))
	}
	if !f.BeforeTime.IsZero() {
		if f.BeforeID != "" {
			add("(created_at, id) < (?, ?)", formatTime(f.BeforeTime), f.BeforeID)
		} else {
			add("created_at < ?", formatTime(f.BeforeTime))
		}
	}
	query := `SELECT id, event_type, severity, COALESCE(user_id, ''), COALESCE(token_id, ''),
		COALESCE(ip_address, ''), COALESCE(user_agent, ''), metadata, created_at FROM security_events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, f.Limit)
	}
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
