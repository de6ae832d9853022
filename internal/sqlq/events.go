package sqlq

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// args collects a statement's arguments and hands out their placeholders.
type args struct {
	d    Dialect
	list []any
}

func (a *args) add(v any) string {
	a.list = append(a.list, v)
	return a.d.placeholder(len(a.list))
}

// InsertEvents appends events to the audit log in one statement. Events without an ID, a severity
// or a time get a UUIDv7, "info" and the store's now().
func (t Tx) InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	if len(events) == 0 {
		return nil
	}
	d := t.d
	a := &args{d: d, list: make([]any, 0, 9*len(events))}
	var b strings.Builder
	b.WriteString(`INSERT INTO security_events
		(id, event_type, severity, user_id, token_id, ip_address, user_agent, metadata, created_at) VALUES `)
	for i, e := range events {
		if e.ID == "" {
			e.ID = uuid.Must(uuid.NewV7()).String()
		}
		if e.Severity == "" {
			e.Severity = fluxauth.SeverityInfo
		}
		if e.CreatedAt.IsZero() {
			e.CreatedAt = t.now()
		}
		var meta any
		if e.Metadata != nil {
			m, err := json.Marshal(e.Metadata)
			if err != nil {
				return fmt.Errorf("event metadata: %w", err)
			}
			meta = string(m)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
			a.add(e.ID), a.add(e.Type), a.add(e.Severity), a.add(nullString(e.UserID)), a.add(nullString(e.TokenID)),
			a.add(nullString(e.IPAddress)), a.add(nullString(e.UserAgent)), a.add(meta), a.add(d.Time(e.CreatedAt)))
	}
	_, err := t.q.Exec(ctx, b.String(), a.list...)
	return err
}

// InsertEvents appends events to the audit log in one statement. Events without an ID, a severity
// or a time get a UUIDv7, "info" and the store's now().
func (s Store) InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	return s.writer().InsertEvents(ctx, events...)
}

// ListEvents returns the events matching f, newest first by (CreatedAt, ID). A Limit of 0 lists
// every match; BeforeID counts only with BeforeTime, and must be an event's ID.
func (s Store) ListEvents(ctx context.Context, f fluxauth.EventFilter) ([]*fluxauth.SecurityEvent, error) {
	d := s.d
	if !f.BeforeTime.IsZero() && f.BeforeID != "" && d.badID(f.BeforeID) {
		return nil, fmt.Errorf("event cursor id %q is not a UUID", f.BeforeID)
	}
	a := &args{d: d}
	var where []string
	add := func(cond string, v any) { where = append(where, cond+" "+a.add(v)) }
	if f.Type != "" {
		add("event_type =", f.Type)
	}
	if f.Severity != "" {
		add("severity =", f.Severity)
	}
	if f.UserID != "" {
		add("user_id =", f.UserID)
	}
	if f.IP != "" {
		add("ip_address =", f.IP)
	}
	if !f.Since.IsZero() {
		add("created_at >=", d.Time(f.Since))
	}
	if !f.Until.IsZero() {
		add("created_at <", d.Time(f.Until))
	}
	if !f.BeforeTime.IsZero() {
		if f.BeforeID != "" {
			where = append(where, "(created_at, id) < ("+a.add(d.Time(f.BeforeTime))+", "+a.add(f.BeforeID)+")")
		} else {
			add("created_at <", d.Time(f.BeforeTime))
		}
	}
	sql := `SELECT id, event_type, severity, user_id, token_id, ip_address, user_agent, metadata, created_at
		FROM security_events`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		sql += " LIMIT " + a.add(f.Limit)
	}
	var out []*fluxauth.SecurityEvent
	err := s.read.Query(ctx, sql, a.list, func(row Scanner) error {
		var e fluxauth.SecurityEvent
		var meta []byte
		if err := row.Scan(scanText(&e.ID), &e.Type, &e.Severity, scanText(&e.UserID), scanText(&e.TokenID),
			scanText(&e.IPAddress), scanText(&e.UserAgent), &meta, scanTime(&e.CreatedAt)); err != nil {
			return err
		}
		if meta != nil {
			if err := json.Unmarshal(meta, &e.Metadata); err != nil {
				return fmt.Errorf("event %s metadata: %w", e.ID, err)
			}
		}
		out = append(out, &e)
		return nil
	})
	return out, err
}
