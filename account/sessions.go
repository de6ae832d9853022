package account

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/google/uuid"
)

// Session is one signed-in device as its user sees it: nothing secret.
type Session struct {
	ID         string
	DeviceName string
	IPAddress  string
	UserAgent  string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	Current    bool
}

// Sessions lists the caller's live sessions, newest activity first.
func (s *Service) Sessions(ctx context.Context, p *Principal) ([]Session, error) {
	return s.sessionsOf(ctx, p.UserID, p.SessionID)
}

// UserSessions lists a user's live sessions, newest activity first, for an admin (none is current).
func (s *Service) UserSessions(ctx context.Context, userID string) ([]Session, error) {
	return s.sessionsOf(ctx, userID, "")
}

func (s *Service) sessionsOf(ctx context.Context, userID, current string) ([]Session, error) {
	tips, err := s.Store.ActiveSessions(ctx, userID, s.Clock.Now())
	if err != nil {
		return nil, err
	}
	out := make([]Session, 0, len(tips))
	for _, t := range tips {
		out = append(out, Session{
			ID: t.SessionID, DeviceName: t.DeviceName, IPAddress: t.IPAddress, UserAgent: t.UserAgent,
			CreatedAt: t.SessionCreatedAt, LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt,
			Current: t.SessionID == current,
		})
	}
	return out, nil
}

var errNoSuchSession = fluxauth.Errorf(fluxauth.ENotFound, "No such session.")

// RevokeSession ends one of the caller's sessions. Another user's session is reported as missing,
// so session IDs cannot be probed.
func (s *Service) RevokeSession(ctx context.Context, p *Principal, sessionID string, dev Device) error {
	if _, err := uuid.Parse(sessionID); err != nil {
		return errNoSuchSession
	}
	return s.revokeSessions(ctx, p.UserID, []string{sessionID}, "user_revoked", "user:"+p.UserID, dev, true)
}

// Logout ends the caller's current session.
func (s *Service) Logout(ctx context.Context, p *Principal, dev Device) error {
	return s.revokeSessions(ctx, p.UserID, []string{p.SessionID}, "logout", "user:"+p.UserID, dev, false)
}

// LogoutAll ends every session of the caller, and every device token: the devices sign in again
// like any other. The tokens go first, because once the sessions are ended the caller can no longer
// retry a log out-all that failed half-way.
func (s *Service) LogoutAll(ctx context.Context, p *Principal, dev Device) error {
	return s.revokeUserSessions(ctx, p.UserID, "logout_all", "user:"+p.UserID, dev, true)
}

// RevokeUserSessions ends every live session of a user; by names who asked (for the audit log).
func (s *Service) RevokeUserSessions(ctx context.Context, userID, reason, by string, dev Device) error {
	return s.revokeUserSessions(ctx, userID, reason, by, dev, false)
}

// revokeUserSessions ends every live session of the user, and with deviceTokens every device token,
// in one transaction holding the user's lock: a login starts its session under the same lock, so
// one that commits while this runs is seen and ended, never left alive after "log out everywhere".
func (s *Service) revokeUserSessions(ctx context.Context, userID, reason, by string, dev Device, deviceTokens bool) error {
	now := s.Clock.Now()
	var done []string
	err := s.update(ctx, func(tx fluxauth.Tx) error {
		done = nil
		if _, err := tx.LockUser(ctx, userID); errors.Is(err, fluxauth.ErrNotFound) {
			return nil // no account, no sessions
		} else if err != nil {
			return err
		}
		if deviceTokens {
			if _, err := s.revokeDeviceTokens(ctx, tx, userID, reason); err != nil {
				return err
			}
		}
		var err error
		done, err = s.revokeAllIn(ctx, tx, userID, "", reason, by, now, dev)
		return err
	})
	if err != nil {
		return err
	}
	s.announceRevoked(ctx, done...)
	return nil
}

// revokeSessions ends the user's sessions with the given IDs in one transaction, each with its
// token_revoked event, and announces them once it has committed.
func (s *Service) revokeSessions(ctx context.Context, userID string, ids []string, reason, by string, dev Device, mustExist bool) error {
	now := s.Clock.Now()
	var done []string
	err := s.update(ctx, func(tx fluxauth.Tx) error {
		var err error
		done, err = s.revokeSessionsIn(ctx, tx, userID, ids, now, reason, by, dev, mustExist)
		return err
	})
	if err != nil {
		return err
	}
	s.announceRevoked(ctx, done...)
	return nil
}

// revokeSessionsIn ends, inside tx, those of the sessions ids that are the user's and live, each
// with its token_revoked event, and returns them; with mustExist, one that is not fails it with
// not_found. Locks are taken in ID order so two revocations never deadlock. The caller announces
// the sessions once tx has committed.
func (s *Service) revokeSessionsIn(ctx context.Context, tx fluxauth.Tx, userID string, ids []string, now time.Time, reason, by string, dev Device, mustExist bool) ([]string, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var done []string
	for _, id := range ids {
		if err := tx.LockSession(ctx, id); err != nil {
			return nil, err
		}
		tip, err := tx.SessionTip(ctx, id)
		if errors.Is(err, fluxauth.ErrNotFound) || (err == nil && tip.UserID != userID) {
			if mustExist {
				return nil, errNoSuchSession
			}
			continue
		} else if err != nil {
			return nil, err
		}
		if err := s.revokeLocked(ctx, tx, tip, now, reason, by, dev); err != nil {
			return nil, err
		}
		done = append(done, id)
	}
	return done, nil
}
