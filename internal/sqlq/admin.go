package sqlq

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/emailaddr"
)

// SummarizeEvents counts the audit log from since on (by type, by severity, and the addresses with
// the most failed logins, at most topIPs of them), and the sessions live at now.
func (s Store) SummarizeEvents(ctx context.Context, since, now time.Time, topIPs int) (*fluxauth.EventSummary, error) {
	d, q := s.d, s.read
	sum := &fluxauth.EventSummary{Since: since, ByType: map[string]int{}, BySeverity: map[string]int{}}
	err := q.Query(ctx, d.rebind(`SELECT event_type, severity, COUNT(*) FROM security_events
		WHERE created_at >= $1 GROUP BY event_type, severity`), []any{d.Time(since)}, func(row Scanner) error {
		var typ, sev string
		var n int
		if err := row.Scan(&typ, &sev, &n); err != nil {
			return err
		}
		sum.ByType[typ] += n
		sum.BySeverity[sev] += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sum.TopFailedLoginIPs, err = s.topFailedLoginIPs(ctx, since, time.Time{}, topIPs); err != nil {
		return nil, err
	}
	if sum.ActiveSessions, err = s.activeSessions(ctx, now); err != nil {
		return nil, err
	}
	return sum, nil
}

// topFailedLoginIPs ranks the addresses of the failed logins created in [since, until) (until zero:
// no end), most first, ties by address.
func (s Store) topFailedLoginIPs(ctx context.Context, since, until time.Time, top int) ([]fluxauth.IPCount, error) {
	a := &args{d: s.d}
	cond := "event_type = " + a.add(fluxauth.EventFailedLogin) + " AND created_at >= " + a.add(s.d.Time(since))
	if !until.IsZero() {
		cond += " AND created_at < " + a.add(s.d.Time(until))
	}
	var out []fluxauth.IPCount
	err := s.read.Query(ctx, `SELECT ip_address, COUNT(*) AS n FROM security_events
		WHERE `+cond+` AND ip_address IS NOT NULL GROUP BY ip_address ORDER BY n DESC, ip_address LIMIT `+a.add(top), a.list,
		func(row Scanner) error {
			var c fluxauth.IPCount
			if err := row.Scan(&c.IP, &c.Count); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	return out, err
}

// activeSessions counts the sessions whose live token has not expired at now.
func (s Store) activeSessions(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.read.QueryRow(ctx, s.d.rebind(`SELECT COUNT(*) FROM refresh_tokens
		WHERE revoked_at IS NULL AND spent_at IS NULL AND expires_at > $1`), s.d.Time(now)).Scan(&n)
	return n, err
}

// EventSeries counts the events of each type per step in one grouped scan of the span, then ranks
// its failed logins by address and by account. step must be whole seconds and start must fall on a
// whole second: buckets are computed in integer seconds, which both dialects do exactly.
func (s Store) EventSeries(ctx context.Context, start time.Time, step time.Duration, buckets int, now time.Time, top int) (*fluxauth.EventSeries, error) {
	if step < time.Second || step%time.Second != 0 || start.Truncate(time.Second) != start || buckets < 1 {
		return nil, fmt.Errorf("event series: step %s and start %s must be whole seconds, buckets %d positive", step, start, buckets)
	}
	d := s.d
	end := start.Add(time.Duration(buckets) * step)
	series := &fluxauth.EventSeries{Start: start, Step: step, Buckets: buckets, Counts: map[string][]int{}}
	bucket := "(" + fmt.Sprintf(d.UnixSeconds, "created_at") + " - $1) / $2"
	err := s.read.Query(ctx, d.rebind(`SELECT `+bucket+` AS bucket, event_type, COUNT(*) FROM security_events
		WHERE created_at >= $3 AND created_at < $4 GROUP BY bucket, event_type`),
		[]any{start.Unix(), int64(step / time.Second), d.Time(start), d.Time(end)}, func(row Scanner) error {
			var i int
			var typ string
			var n int
			if err := row.Scan(&i, &typ, &n); err != nil {
				return err
			}
			if i < 0 || i >= buckets {
				return fmt.Errorf("event series: bucket %d outside 0..%d", i, buckets-1)
			}
			c := series.Counts[typ]
			if c == nil {
				c = make([]int, buckets)
				series.Counts[typ] = c
			}
			c[i] += n
			return nil
		})
	if err != nil {
		return nil, err
	}
	if series.TopFailedLoginIPs, err = s.topFailedLoginIPs(ctx, start, end, top); err != nil {
		return nil, err
	}
	if series.TopTargetedUsers, err = s.topTargetedUsers(ctx, start, end, top); err != nil {
		return nil, err
	}
	if series.ActiveSessions, err = s.activeSessions(ctx, now); err != nil {
		return nil, err
	}
	return series, nil
}

// topTargetedUsers ranks the accounts of the failed logins created in [since, until), most first,
// ties by ID, with their current email. security_events.user_id is text and users.id a UUID in
// PostgreSQL, so the emails are looked up in a second statement rather than joined.
func (s Store) topTargetedUsers(ctx context.Context, since, until time.Time, top int) ([]fluxauth.UserCount, error) {
	d := s.d
	var out []fluxauth.UserCount
	err := s.read.Query(ctx, d.rebind(`SELECT user_id, COUNT(*) AS n FROM security_events
		WHERE event_type = $1 AND created_at >= $2 AND created_at < $3 AND user_id IS NOT NULL
		GROUP BY user_id ORDER BY n DESC, user_id LIMIT $4`), []any{fluxauth.EventFailedLogin, d.Time(since), d.Time(until), top},
		func(row Scanner) error {
			var c fluxauth.UserCount
			if err := row.Scan(&c.UserID, &c.Count); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	if err != nil || len(out) == 0 {
		return out, err
	}
	a := &args{d: d}
	var in []string
	for _, c := range out {
		in = append(in, a.add(c.UserID))
	}
	if len(in) == 0 {
		return out, nil
	}
	emails := map[string]string{}
	err = s.read.Query(ctx, `SELECT id, email FROM users WHERE id IN (`+strings.Join(in, ", ")+`)`, a.list, func(row Scanner) error {
		var id, email string
		if err := row.Scan(scanText(&id), &email); err != nil {
			return err
		}
		emails[id] = email
		return nil
	})
	for i := range out {
		out[i].Email = emails[out[i].UserID]
	}
	return out, err
}

// likeEscaper makes text match itself literally in a LIKE pattern with ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// SearchUsers returns up to limit users whose email contains query, case-insensitively, ordered by
// email. It compares both the canonical key (which folds the local part's case everywhere, Unicode
// included) and the lower-cased address as given (SQLite's lower folds ASCII only; the domain's
// Unicode form is not in the key, whose domain is IDNA ASCII). A full scan: an admin's search, not
// a hot path.
func (s Store) SearchUsers(ctx context.Context, query string, limit int) ([]*fluxauth.User, error) {
	pattern := "%" + likeEscaper.Replace(strings.ToLower(query)) + "%"
	key := "%" + likeEscaper.Replace(emailaddr.Canonical(query)) + "%"
	var out []*fluxauth.User
	err := s.read.Query(ctx, s.d.rebind(`SELECT `+UserColumns+` FROM users
		WHERE LOWER(email) LIKE $1 ESCAPE '\' OR email_key LIKE $2 ESCAPE '\' ORDER BY email_key LIMIT $3`),
		[]any{pattern, key, limit}, func(row Scanner) error {
			u, err := ScanUser(row)
			if err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
	return out, err
}

// IdentitiesOf returns the user's identities, oldest first.
func (s Store) IdentitiesOf(ctx context.Context, userID string) ([]*fluxauth.Identity, error) {
	return s.reader().IdentitiesOf(ctx, userID)
}
