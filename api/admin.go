package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
)

// admin lets only admins through; account.Service.RequireAdmin says who is one.
func (s *Server) admin(fn authedFunc) handlerFunc {
	return s.authed(func(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
		if err := s.Accounts.RequireAdmin(r.Context(), p); err != nil {
			return err
		}
		return fn(w, r, p)
	})
}

type eventJSON struct {
	ID string `json:"id"`
	// Seq is the event's place in the order the database took events in (the live feed's order).
	Seq       int64          `json:"seq"`
	EventType string         `json:"eventType"`
	Severity  string         `json:"severity"`
	UserID    *string        `json:"userId"`
	TokenID   *string        `json:"tokenId"`
	IPAddress *string        `json:"ipAddress"`
	UserAgent *string        `json:"userAgent"`
	Metadata  map[string]any `json:"metadata"`
	CreatedAt time.Time      `json:"createdAt"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// EventJSON is the admin API's shape of an event; the live stream uses it too.
func EventJSON(e *fluxauth.SecurityEvent) any {
	return eventJSON{
		ID: e.ID, Seq: e.Seq, EventType: e.Type, Severity: e.Severity, UserID: nullable(e.UserID), TokenID: nullable(e.TokenID),
		IPAddress: nullable(e.IPAddress), UserAgent: nullable(e.UserAgent), Metadata: e.Metadata, CreatedAt: e.CreatedAt,
	}
}

const (
	defaultEventLimit = 50
	maxEventLimit     = 500
)

// parseEventFilter reads the events query, reporting every bad parameter at once.
func parseEventFilter(r *http.Request) (fluxauth.EventFilter, error) {
	q := r.URL.Query()
	f := fluxauth.EventFilter{
		Type: q.Get("type"), Severity: q.Get("severity"), UserID: q.Get("userId"), IP: q.Get("ip"),
		Limit: defaultEventLimit,
	}
	var v fluxauth.ValidationError
	parseTime := func(name string, dst *time.Time) {
		if raw := q.Get(name); raw != "" {
			t, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil {
				v.Add(name, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
				return
			}
			*dst = t.UTC()
		}
	}
	parseTime("since", &f.Since)
	parseTime("until", &f.Until)
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxEventLimit {
			v.Add("limit", "must be a whole number from 1 to 500")
		} else {
			f.Limit = n
		}
	}
	if raw := q.Get("cursor"); raw != "" {
		t, id, ok := decodeCursor(raw)
		if !ok {
			v.Add("cursor", "is not a cursor this API returned")
		}
		f.BeforeTime, f.BeforeID = t, id
	}
	if f.Severity != "" && f.Severity != fluxauth.SeverityInfo && f.Severity != fluxauth.SeverityWarning && f.Severity != fluxauth.SeverityCritical {
		v.Add("severity", "must be info, warning or critical")
	}
	return f, v.Err()
}

// A cursor is the (created_at, id) of the last event of a page: keyset pagination stays stable while
// new events arrive, unlike an offset.
func encodeCursor(e *fluxauth.SecurityEvent) string {
	return base64.RawURLEncoding.EncodeToString([]byte(e.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + e.ID))
}

func decodeCursor(s string) (time.Time, string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", false
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return time.Time{}, "", false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", false
	}
	if _, err := uuid.Parse(id); err != nil {
		return time.Time{}, "", false
	}
	return t, id, true
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, _ *account.Principal) error {
	f, err := parseEventFilter(r)
	if err != nil {
		return err
	}
	// One more than asked tells whether another page exists.
	want := f.Limit
	f.Limit++
	events, err := s.Accounts.AdminEvents(r.Context(), f)
	if err != nil {
		return err
	}
	var next *string
	if len(events) > want {
		events = events[:want]
		c := encodeCursor(events[want-1])
		next = &c
	}
	out := make([]any, 0, len(events))
	for _, e := range events {
		out = append(out, EventJSON(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "nextCursor": next})
	return nil
}

func (s *Server) summary(w http.ResponseWriter, r *http.Request, _ *account.Principal) error {
	window := time.Hour
	if raw := r.URL.Query().Get("window"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 || d > 90*24*time.Hour {
			var v fluxauth.ValidationError
			v.Add("window", "must be a positive duration up to 2160h, e.g. 1h or 24h")
			return v.Err()
		}
		window = d
	}
	sum, now, err := s.Accounts.AdminSummary(r.Context(), window, 10)
	if err != nil {
		return err
	}
	top := make([]map[string]any, 0, len(sum.TopFailedLoginIPs))
	for _, c := range sum.TopFailedLoginIPs {
		top = append(top, map[string]any{"ip": c.IP, "count": c.Count})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"window": window.String(), "since": sum.Since, "until": now,
		"byType": sum.ByType, "bySeverity": sum.BySeverity,
		"topFailedLoginIps": top, "activeSessions": sum.ActiveSessions,
	})
	return nil
}

func (s *Server) adminRevokeSessions(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	if err := s.Accounts.AdminRevokeUserSessions(r.Context(), p, r.PathValue("id"), s.device(r, "", "")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
