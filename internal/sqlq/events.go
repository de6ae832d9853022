// Package sqlq holds the SQL both stores build the same way, apart from their placeholders and how
// they pass times: the audit log's insert rows and its listing query.
package sqlq

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// Dialect says how a store writes a placeholder for its n-th argument (from 1) and passes a time.
type Dialect struct {
	Placeholder func(n int) string
	Time        func(time.Time) any
}

// query collects arguments and hands out their placeholders.
type query struct {
	d    Dialect
	args []any
}

func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return q.d.Placeholder(len(q.args))
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// InsertEvents returns one INSERT for events and its arguments. Events without an ID, a severity or
// a time get a UUIDv7, "info" and now().
func InsertEvents(d Dialect, events []*fluxauth.SecurityEvent, now func() time.Time) (string, []any, error) {
	q := &query{d: d, args: make([]any, 0, 9*len(events))}
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
			e.CreatedAt = now()
		}
		var meta any
		if e.Metadata != nil {
			m, err := json.Marshal(e.Metadata)
			if err != nil {
				return "", nil, fmt.Errorf("event metadata: %w", err)
			}
			meta = string(m)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
			q.arg(e.ID), q.arg(e.Type), q.arg(e.Severity), q.arg(nullString(e.UserID)), q.arg(nullString(e.TokenID)),
			q.arg(nullString(e.IPAddress)), q.arg(nullString(e.UserAgent)), q.arg(meta), q.arg(d.Time(e.CreatedAt)))
	}
	return b.String(), q.args, nil
}

// ListEvents returns the listing query for f (newest first by created_at, then id; a Limit of 0
// lists every match; BeforeID counts only with BeforeTime) and its arguments. columns is the
// store's select list.
func ListEvents(d Dialect, columns string, f fluxauth.EventFilter) (string, []any) {
	q := &query{d: d}
	var where []string
	add := func(cond string, v any) { where = append(where, cond+" "+q.arg(v)) }
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
			where = append(where, "(created_at, id) < ("+q.arg(d.Time(f.BeforeTime))+", "+q.arg(f.BeforeID)+")")
		} else {
			add("created_at <", d.Time(f.BeforeTime))
		}
	}
	sql := "SELECT " + columns + " FROM security_events"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		sql += " LIMIT " + q.arg(f.Limit)
	}
	return sql, q.args
}
