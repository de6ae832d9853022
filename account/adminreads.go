package account

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// The admin's reads. Like the admin's actions they go through the service, whose clock stamped
// what they report on; the caller must have passed RequireAdmin.

// AdminEvents lists the audit log's events matching f, newest first.
func (s *Service) AdminEvents(ctx context.Context, f fluxauth.EventFilter) ([]*fluxauth.SecurityEvent, error) {
	return s.Store.ListEvents(ctx, f)
}

// AdminSummary counts the events of the window ending now, with the topIPs IPs of the most failed
// logins, and returns the now it was measured at.
func (s *Service) AdminSummary(ctx context.Context, window time.Duration, topIPs int) (*fluxauth.EventSummary, time.Time, error) {
	now := s.Clock.Now()
	sum, err := s.Admin.SummarizeEvents(ctx, now.Add(-window), now, topIPs)
	return sum, now, err
}

// AdminSeries counts events per type in n buckets of step, the last one holding now; buckets fall on
// multiples of step (whole minutes for 1m) so that refreshes line up with the previous series. It
// returns the first bucket's start.
func (s *Service) AdminSeries(ctx context.Context, step time.Duration, n, top int) (*fluxauth.EventSeries, time.Time, error) {
	now := s.Clock.Now()
	start := now.Truncate(step).Add(step - time.Duration(n)*step)
	series, err := s.Admin.EventSeries(ctx, start, step, n, now, top)
	return series, start, err
}

// AdminSearchUsers returns up to limit users whose email contains query, literally.
func (s *Service) AdminSearchUsers(ctx context.Context, query string, limit int) ([]*fluxauth.User, error) {
	return s.Admin.SearchUsers(ctx, query, limit)
}

// AdminIdentities returns the user's external identities, oldest first.
func (s *Service) AdminIdentities(ctx context.Context, userID string) ([]*fluxauth.Identity, error) {
	return s.Admin.IdentitiesOf(ctx, userID)
}
