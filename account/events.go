package account

import (
	"context"

	"github.com/fluxstudio/fluxauth"
)

func (s *Service) event(typ, severity, userID, tokenID string, dev Device, meta map[string]any) *fluxauth.SecurityEvent {
	return &fluxauth.SecurityEvent{
		ID: s.newID(), Type: typ, Severity: severity, UserID: userID, TokenID: tokenID,
		IPAddress: dev.IP, UserAgent: dev.UserAgent, Metadata: meta, CreatedAt: s.Clock.Now(),
	}
}

// record writes an event that is not part of a transaction, filling in what the caller left out. Its
// error fails the request (503 when the database is down) rather than losing the event.
func (s *Service) record(ctx context.Context, ev *fluxauth.SecurityEvent, dev Device) error {
	if ev.ID == "" {
		ev.ID = s.newID()
	}
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = s.Clock.Now()
	}
	if ev.IPAddress == "" {
		ev.IPAddress = dev.IP
	}
	if ev.UserAgent == "" {
		ev.UserAgent = dev.UserAgent
	}
	return s.Events.Record(ctx, ev)
}
