package api

import (
	"net/http"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
)

// The admin API behind the security dashboard: chart series, user search and investigation, and
// the admin's actions. The live stream is in stream.go.

const (
	maxSeriesWindow  = 24 * time.Hour
	minSeriesStep    = 10 * time.Second
	maxSeriesBuckets = 360
	seriesTop        = 10
	userSearchLimit  = 50
	userEventsLimit  = 50
)

// parseSeries reads the timeseries query (window, default 1h; step, default 1m), reporting every
// bad parameter at once.
func parseSeries(r *http.Request) (window, step time.Duration, err error) {
	q := r.URL.Query()
	window, step = time.Hour, time.Minute
	var v fluxauth.ValidationError
	if raw := q.Get("window"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 || d > maxSeriesWindow {
			v.Add("window", "must be a positive duration up to 24h, e.g. 1h")
		} else {
			window = d
		}
	}
	if raw := q.Get("step"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < minSeriesStep || d%time.Second != 0 {
			v.Add("step", "must be a whole number of seconds, at least 10s, e.g. 1m")
		} else {
			step = d
		}
	}
	if err := v.Err(); err != nil {
		return 0, 0, err
	}
	if step > window {
		v.Add("step", "must not be longer than window")
	} else if buckets(window, step) > maxSeriesBuckets {
		v.Add("step", "must divide window into at most 360 steps")
	}
	return window, step, v.Err()
}

// buckets is how many steps cover window, the last one partly.
func buckets(window, step time.Duration) int {
	return int((window + step - 1) / step)
}

func (s *Server) timeseries(w http.ResponseWriter, r *http.Request, _ *account.Principal) error {
	window, step, err := parseSeries(r)
	if err != nil {
		return err
	}
	n := buckets(window, step)
	series, start, err := s.Accounts.AdminSeries(r.Context(), step, n, seriesTop)
	if err != nil {
		return err
	}
	starts := make([]time.Time, n)
	for i := range starts {
		starts[i] = start.Add(time.Duration(i) * step)
	}
	ips := make([]map[string]any, 0, len(series.TopFailedLoginIPs))
	for _, c := range series.TopFailedLoginIPs {
		ips = append(ips, map[string]any{"ip": c.IP, "count": c.Count})
	}
	users := make([]map[string]any, 0, len(series.TopTargetedUsers))
	for _, c := range series.TopTargetedUsers {
		users = append(users, map[string]any{"userId": c.UserID, "email": c.Email, "count": c.Count})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"window": window.String(), "step": step.String(), "start": start, "buckets": starts,
		"series": series.Counts, "topFailedLoginIps": ips, "topTargetedUsers": users,
		"activeSessions": series.ActiveSessions,
	})
	return nil
}

// adminUserJSON is a user as the admin API shows it.
type adminUserJSON struct {
	userJSON
	CreatedAt time.Time `json:"createdAt"`
}

func adminUserOf(u *fluxauth.User) adminUserJSON {
	return adminUserJSON{userJSON: userOf(u), CreatedAt: u.CreatedAt}
}

// userQuery bounds the search text like any other text a client sends.
type userQuery struct {
	Query string `json:"query" check:"text,254"`
}

func (s *Server) searchUsers(w http.ResponseWriter, r *http.Request, _ *account.Principal) error {
	q := userQuery{Query: r.URL.Query().Get("query")}
	if err := checkFields(&q); err != nil {
		return err
	}
	users, err := s.Accounts.AdminSearchUsers(r.Context(), q.Query, userSearchLimit)
	if err != nil {
		return err
	}
	out := make([]adminUserJSON, 0, len(users))
	for _, u := range users {
		out = append(out, adminUserOf(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
	return nil
}

type identityJSON struct {
	Provider      string    `json:"provider"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"emailVerified"`
	CreatedAt     time.Time `json:"createdAt"`
}

func (s *Server) adminUser(w http.ResponseWriter, r *http.Request, _ *account.Principal) error {
	ctx := r.Context()
	u, err := s.Accounts.AdminUser(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	sessions, err := s.Accounts.UserSessions(ctx, u.ID)
	if err != nil {
		return err
	}
	ids, err := s.Accounts.AdminIdentities(ctx, u.ID)
	if err != nil {
		return err
	}
	events, err := s.Accounts.AdminEvents(ctx, fluxauth.EventFilter{UserID: u.ID, Limit: userEventsLimit})
	if err != nil {
		return err
	}
	lockout, err := s.Accounts.Lockout(ctx, u.ID)
	if err != nil {
		return err
	}
	identities := make([]identityJSON, 0, len(ids))
	for _, id := range ids {
		identities = append(identities, identityJSON{Provider: id.Provider, Email: id.Email, EmailVerified: id.EmailVerified, CreatedAt: id.CreatedAt})
	}
	evs := make([]any, 0, len(events))
	for _, e := range events {
		evs = append(evs, EventJSON(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user": adminUserOf(u), "sessions": sessionsJSON(sessions), "identities": identities, "events": evs,
		"lockout": map[string]any{"locked": lockout.Locked, "retryAfterSeconds": ceilSeconds(lockout.RetryAfter)},
	})
	return nil
}

func (s *Server) adminRevokeSession(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	if err := s.Accounts.AdminRevokeSession(r.Context(), p, r.PathValue("id"), s.device(r, "", "")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) adminUnlock(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	if err := s.Accounts.AdminUnlock(r.Context(), p, r.PathValue("id"), s.device(r, "", "")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
