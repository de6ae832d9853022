package sqlite

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var _ fluxauth.AdminStore = (*DB)(nil)

// SummarizeEvents counts the audit log from since on, and the sessions live at now.
func (db *DB) SummarizeEvents(ctx context.Context, since, now time.Time, topIPs int) (*fluxauth.EventSummary, error) {
	sum := &fluxauth.EventSummary{Since: since, ByType: map[string]int{}, BySeverity: map[string]int{}}
	rows, err := db.reader.QueryContext(ctx, `SELECT event_type, severity, COUNT(*) FROM security_events
		WHERE created_at >= ? GROUP BY event_type, severity`, formatTime(since))
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, sev string
		var n int
		if err := rows.Scan(&typ, &sev, &n); err != nil {
			return nil, mapErr(err)
		}
		sum.ByType[typ] += n
		sum.BySeverity[sev] += n
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	ips, err := db.reader.QueryContext(ctx, `SELECT ip_address, COUNT(*) AS n FROM security_events
		WHERE event_type = ? AND created_at >= ? AND ip_address IS NOT NULL
		GROUP BY ip_address ORDER BY n DESC, ip_address LIMIT ?`, fluxauth.EventFailedLogin, formatTime(since), topIPs)
	if err != nil {
		return nil, mapErr(err)
	}
	defer ips.Close()
	for ips.Next() {
		var c fluxauth.IPCount
		if err := ips.Scan(&c.IP, &c.Count); err != nil {
			return nil, mapErr(err)
		}
		sum.TopFailedLoginIPs = append(sum.TopFailedLoginIPs, c)
	}
	if err := ips.Err(); err != nil {
		return nil, mapErr(err)
	}
	err = db.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM refresh_tokens
		WHERE revoked_at IS NULL AND spent_at IS NULL AND expires_at > ?`, formatTime(now)).Scan(&sum.ActiveSessions)
	return sum, mapErr(err)
}
