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
	// seq, for a statement whose placeholders appear in the order they were added and nowhere
	// else, writes SQLite's as a bare "?" (the next argument) instead of "?n": modernc's driver
	// looks each numbered one up by name, which costs time quadratic in their number, 30 s for the
	// 9,000 arguments of an import batch against 0.1 s.
	seq bool
}

func (a *args) add(v any) string {
	a.list = append(a.list, v)
	if a.seq && a.d.Param == '?' {
		return "?"
	}
	return a.d.placeholder(len(a.list))
}

// InsertEvents appends events to the audit log in one statement. Events without an ID, a severity
// or a time get a UUIDv7, "info" and the store's now(); every event gets the Seq the database
// assigned it.
func (t Tx) InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	if len(events) == 0 {
		return nil
	}
	d := t.d
	a := &args{d: d, list: make([]any, 0, 9*len(events)), seq: true}
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
	b.WriteString(" RETURNING id, seq")
	byID := make(map[string]*fluxauth.SecurityEvent, len(events))
	for _, e := range events {
		byID[e.ID] = e
	}
	// RETURNING's row order is not promised to be the VALUES' order: match by id.
	return t.q.Query(ctx, b.String(), a.list, func(row Scanner) error {
		var id string
		var seq int64
		if err := row.Scan(scanText(&id), &seq); err != nil {
			return err
		}
		if e := byID[id]; e != nil {
			e.Seq = seq
		}
		return nil
	})
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
	sql := `SELECT ` + eventColumns + ` FROM security_events`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		sql += " LIMIT " + a.add(f.Limit)
	}
	return s.queryEvents(ctx, sql, a.list)
}

// eventColumns are security_events' columns in the order scanEvent reads them.
const eventColumns = `seq, id, event_type, severity, user_id, token_id, ip_address, user_agent, metadata, created_at`

func (s Store) queryEvents(ctx context.Context, query string, args []any) ([]*fluxauth.SecurityEvent, error) {
	var out []*fluxauth.SecurityEvent
	err := s.read.Query(ctx, query, args, func(row Scanner) error {
		var e fluxauth.SecurityEvent
		var meta []byte
		if err := row.Scan(&e.Seq, scanText(&e.ID), &e.Type, &e.Severity, scanText(&e.UserID), scanText(&e.TokenID),
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

// EventsAfterSeq returns up to limit events whose seq is above after or in also, by seq. The
// feed's readers pass the few seqs they are still waiting for as also, so a wake reads only what
// is new to them (an index range and a few point lookups), never the window again.
func (s Store) EventsAfterSeq(ctx context.Context, after int64, also []int64, limit int) ([]*fluxauth.SecurityEvent, error) {
	a := &args{d: s.d}
	cond := "seq > " + a.add(after)
	if len(also) > 0 {
		in := make([]string, len(also))
		for i, seq := range also {
			in[i] = a.add(seq)
		}
		cond += " OR seq IN (" + strings.Join(in, ", ") + ")"
	}
	return s.queryEvents(ctx, `SELECT `+eventColumns+` FROM security_events WHERE `+cond+` ORDER BY seq LIMIT `+a.add(limit), a.list)
}

// LastEventSeq returns the highest seq of the committed events, 0 when there are none.
func (s Store) LastEventSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.read.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM security_events`).Scan(&seq)
	return seq, err
}
