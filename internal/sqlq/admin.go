package sqlq

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
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
	err = q.Query(ctx, d.rebind(`SELECT ip_address, COUNT(*) AS n FROM security_events
		WHERE event_type = $1 AND created_at >= $2 AND ip_address IS NOT NULL
		GROUP BY ip_address ORDER BY n DESC, ip_address LIMIT $3`), []any{fluxauth.EventFailedLogin, d.Time(since), topIPs},
		func(row Scanner) error {
			var c fluxauth.IPCount
			if err := row.Scan(&c.IP, &c.Count); err != nil {
				return err
			}
			sum.TopFailedLoginIPs = append(sum.TopFailedLoginIPs, c)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = q.QueryRow(ctx, d.rebind(`SELECT COUNT(*) FROM refresh_tokens
		WHERE revoked_at IS NULL AND spent_at IS NULL AND expires_at > $1`), d.Time(now)).Scan(&sum.ActiveSessions)
	if err != nil {
		return nil, err
	}
	return sum, nil
}
