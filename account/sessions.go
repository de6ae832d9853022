package account

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/token"
)

// Authenticate verifies an Authorization header's bearer access token and that its session is still
// alive.
func (s *Service) Authenticate(ctx context.Context, authorization string, dev Device) (*Principal, error) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, fluxauth.Errorf(fluxauth.EInvalidToken, "A bearer access token is required.")
	}
	c, err := s.Tokens.Verify(strings.TrimSpace(tok))
	if err != nil {
		return nil, err
	}
	if s.Config.CheckSessionOwner {
		if err := s.checkSessionOwner(ctx, c, dev); err != nil {
			return nil, err
		}
	}
	revoked, err := s.Revocations.IsRevoked(ctx, c.SessionID)
	if err != nil {
		return nil, err
	}
	if revoked {
		// One event per session per minute: a client polling with a dead token is one finding.
		first, err := s.firstIn(ctx, "revoked-access:"+c.SessionID, time.Minute)
		if err != nil {
			return nil, err
		}
		if first {
			if err := s.record(ctx, &fluxauth.SecurityEvent{
				Type: fluxauth.EventSuspiciousTokenUsage, Severity: fluxauth.SeverityWarning, UserID: c.UserID,
				Metadata: map[string]any{"reason": "revoked_session_access_token", "sessionId": c.SessionID},
			}, dev); err != nil {
				return nil, err
			}
		}
		return nil, fluxauth.Errorf(fluxauth.ESessionRevoked, "The session has been ended; sign in again.")
	}
	return &Principal{UserID: c.UserID, SessionID: c.SessionID, Email: c.Email, UserType: c.UserType}, nil
}

// errForeignSession answers a token whose session is not its subject's with the message every
// invalid token gets: which check failed is of use only to whoever forged it.
var errForeignSession = fluxauth.Errorf(fluxauth.EInvalidToken, "The access token is invalid or expired.")

// checkSessionOwner refuses a token whose sid names a session that is not its sub's (or no
// session). A signature proves who signed, and with HS256 every service holding the shared secret
// can sign {sub: an admin, sid: any live session}; the session's owner, from the database and then
// from the revocation list's cache, is the fact. The check comes before the revocation check so
// that a forged token is not answered, or recorded, as the claimed user's.
func (s *Service) checkSessionOwner(ctx context.Context, c *token.Claims, dev Device) error {
	owner, err := s.Revocations.Owner(ctx, c.SessionID)
	if err != nil && !errors.Is(err, fluxauth.ErrNotFound) {
		return err
	}
	if err == nil && owner == c.UserID {
		return nil
	}
	// One event per session per minute, as for revoked sessions: a replayed forgery is one finding.
	first, err := s.firstIn(ctx, "foreign-session:"+c.SessionID, time.Minute)
	if err != nil {
		return err
	}
	if first {
		reason := "access_token_session_of_another_user"
		if owner == "" {
			reason = "access_token_unknown_session"
		}
		// Recorded against the session's owner, whose session it is; the claimed user is metadata.
		if err := s.record(ctx, &fluxauth.SecurityEvent{
			Type: fluxauth.EventSessionHijackAttempt, Severity: fluxauth.SeverityCritical, UserID: owner,
			Metadata: map[string]any{"reason": reason, "sessionId": c.SessionID, "claimedUserId": c.UserID},
		}, dev); err != nil {
			return err
		}
	}
	return errForeignSession
}

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context, p *Principal) (*fluxauth.User, error) {
	u, err := s.Store.UserByID(ctx, p.UserID)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return nil, fluxauth.Errorf(fluxauth.EInvalidToken, "The account no longer exists.")
	}
	return u, err
}

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
	tips, err := s.Store.ActiveSessions(ctx, p.UserID, s.Clock.Now())
	if err != nil {
		return nil, err
	}
	out := make([]Session, 0, len(tips))
	for _, t := range tips {
		out = append(out, Session{
			ID: t.SessionID, DeviceName: t.DeviceName, IPAddress: t.IPAddress, UserAgent: t.UserAgent,
			CreatedAt: t.SessionCreatedAt, LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt,
			Current: t.SessionID == p.SessionID,
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

// LogoutAll ends every session of the caller.
func (s *Service) LogoutAll(ctx context.Context, p *Principal, dev Device) error {
	return s.RevokeUserSessions(ctx, p.UserID, "logout_all", "user:"+p.UserID, dev)
}

// RevokeUserSessions ends every live session of a user; by names who asked (for the audit log).
func (s *Service) RevokeUserSessions(ctx context.Context, userID, reason, by string, dev Device) error {
	tips, err := s.Store.ActiveSessions(ctx, userID, s.Clock.Now())
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(tips))
	for _, t := range tips {
		ids = append(ids, t.SessionID)
	}
	return s.revokeSessions(ctx, userID, ids, reason, by, dev, false)
}

// revokeSessions ends the user's sessions with the given IDs in one transaction, each with its
// token_revoked event. Locks are taken in ID order so two revocations never deadlock.
func (s *Service) revokeSessions(ctx context.Context, userID string, ids []string, reason, by string, dev Device, mustExist bool) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	now := s.Clock.Now()
	var done []string
	err := s.update(ctx, func(tx fluxauth.Tx) error {
		done = done[:0]
		for _, id := range ids {
			if err := tx.LockSession(ctx, id); err != nil {
				return err
			}
			tip, err := tx.SessionTip(ctx, id)
			if errors.Is(err, fluxauth.ErrNotFound) || (err == nil && tip.UserID != userID) {
				if mustExist {
					return errNoSuchSession
				}
				continue
			} else if err != nil {
				return err
			}
			if err := s.revokeLocked(ctx, tx, tip, now, reason, by, dev); err != nil {
				return err
			}
			done = append(done, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.announceRevoked(ctx, done...)
	return nil
}
