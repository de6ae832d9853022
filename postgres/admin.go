package postgres

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var _ fluxauth.AdminStore = (*DB)(nil)

// SummarizeEvents counts the audit log from since on, and the sessions live at now.
func (db *DB) SummarizeEvents(ctx context.Context, since, now time.Time, topIPs int) (*fluxauth.EventSummary, error) {
	sum := &fluxauth.EventSummary{Since: since, ByType: map[string]int{}, BySeverity: map[string]int{}}
	rows, err := db.pool.Query(ctx, `SELECT event_type, severity, COUNT(*) FROM security_events
		WHERE created_at >= $1 GROUP BY event_type, severity`, since)
	if err != nil {
		return nil, mapErr(err)
	}
	for rows.Next() {
		var typ, sev string
		var n int
		if err := rows.Scan(&typ, &sev, &n); err != nil {
			rows.Close()
			return nil, mapErr(err)
		}
		sum.ByType[typ] += n
		sum.BySeverity[sev] += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	ips, err := db.pool.Query(ctx, `SELECT ip_address, COUNT(*) AS n FROM security_events
		WHERE event_type = $1 AND created_at >= $2 AND ip_address IS NOT NULL
		GROUP BY ip_address ORDER BY n DESC, ip_address LIMIT $3`, fluxauth.EventFailedLogin, since, topIPs)
	if err != nil {
		return nil, mapErr(err)
	}
	for ips.Next() {
		var c fluxauth.IPCount
		if err := ips.Scan(&c.IP, &c.Count); err != nil {
			ips.Close()
			return nil, mapErr(err)
		}
		sum.TopFailedLoginIPs = append(sum.TopFailedLoginIPs, c)
	}
	ips.Close()
	if err := ips.Err(); err != nil {
		return nil, mapErr(err)
	}
	err = db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM refresh_tokens
		WHERE revoked_at IS NULL AND spent_at IS NULL AND expires_at > $1`, now).Scan(&sum.ActiveSessions)
	return sum, mapErr(err)
}
