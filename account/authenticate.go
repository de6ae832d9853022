package account

import (
	"context"
	"errors"
	"strings"
	"time"

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
	return &Principal{UserID: c.UserID, SessionID: c.SessionID, Email: c.Email, UserType: c.UserType, ExpiresAt: c.ExpiresAt, AuthTime: c.AuthTime}, nil
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
