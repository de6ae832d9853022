package account

import (
	"context"
	"errors"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/token"
)

// Refresh spends a refresh token and returns its successor with a new access token.
//
// Reuse detection is built so honest clients are never logged out while theft is still caught:
//   - a spent token presented within the grace window (two tabs refreshing at once) rotates the
//     session's live token again, so the chain stays single;
//   - a spent token whose successor was never used is a lost response: it is answered the same way,
//     at any time before the session expires;
//   - any other spent token means two parties hold the chain: the session is revoked.
func (s *Service) Refresh(ctx context.Context, raw string, dev Device) (*Result, error) {
	if raw == "" {
		return nil, fluxauth.Errorf(fluxauth.EInvalidRefreshToken, "The refresh token is invalid.")
	}
	hash := token.HashRefreshToken(raw)
	dev.Name = "" // a refresh keeps the session's device name
	dev = dev.normalized()
	now := s.Clock.Now()
	if err := s.allow(ctx, "refresh:ip", s.Rules.RefreshIP, dev, dev.IP); err != nil {
		return nil, err
	}
	var (
		next    *fluxauth.RefreshToken
		nextRaw string // the successor token itself, returned to the client and never stored
		failure error  // committed together with the revocation it caused
		revoked string
	)
	err := s.update(ctx, func(tx fluxauth.Tx) error {
		next, failure, revoked = nil, nil, ""
		rt, err := tx.RefreshTokenByHash(ctx, hash)
		if errors.Is(err, fluxauth.ErrNotFound) {
			return fluxauth.Errorf(fluxauth.EInvalidRefreshToken, "The refresh token is invalid.")
		} else if err != nil {
			return err
		}
		if err := tx.LockSession(ctx, rt.SessionID); err != nil {
			return err
		}
		// Read again under the lock: another request may have spent or revoked it meanwhile.
		if rt, err = tx.RefreshTokenByHash(ctx, hash); err != nil {
			return err
		}
		if rt.Revoked() {
			return fluxauth.Errorf(fluxauth.ERefreshTokenRevoked, "The session has been ended; sign in again.")
		}
		if !now.Before(rt.SessionCreatedAt.Add(s.Config.SessionMaxAge)) {
			return errRefreshExpired
		}
		current := rt
		if rt.Spent() {
			tip, err := tx.SessionTip(ctx, rt.SessionID)
			if errors.Is(err, fluxauth.ErrNotFound) {
				return errRefreshExpired
			} else if err != nil {
				return err
			}
			inGrace := !now.After(rt.SpentAt.Add(s.Config.RefreshGrace))
			lostResponse := tip.ParentID == rt.ID
			if !inGrace && !lostResponse {
				revoked = rt.SessionID
				failure = fluxauth.Errorf(fluxauth.ERefreshTokenReused, "The refresh token was already used; the session has been ended for safety.")
				return s.revokeLocked(ctx, tx, tip, now, "refresh_token_reused", "system", dev,
					s.event(fluxauth.EventSessionHijackAttempt, fluxauth.SeverityCritical, rt.UserID, tip.ID, dev, map[string]any{
						"reason": "refresh_token_reused", "sessionId": rt.SessionID, "spentTokenId": rt.ID,
						"spentAt": rt.SpentAt.Format(time.RFC3339Nano),
					}))
			}
			current = tip
		}
		if !now.Before(current.ExpiresAt) {
			return errRefreshExpired
		}
		if err := s.allow(ctx, "refresh:session", s.Rules.RefreshSession, dev, current.SessionID); err != nil {
			return err
		}
		if dev.Fingerprint != "" && current.DeviceFingerprint != "" && dev.Fingerprint != current.DeviceFingerprint {
			mismatch := s.event(fluxauth.EventDeviceFingerprintMismatch, fluxauth.SeverityWarning, current.UserID, current.ID, dev,
				map[string]any{"sessionId": current.SessionID, "policy": s.fingerprintPolicy()})
			if s.Config.FingerprintRevoke {
				revoked = current.SessionID
				failure = fluxauth.Errorf(fluxauth.ERefreshTokenRevoked, "The session has been ended for safety; sign in again.")
				return s.revokeLocked(ctx, tx, current, now, "fingerprint_mismatch", "system", dev, mismatch,
					s.event(fluxauth.EventSessionHijackAttempt, fluxauth.SeverityCritical, current.UserID, current.ID, dev,
						map[string]any{"reason": "fingerprint_mismatch", "sessionId": current.SessionID}))
			}
			if err := tx.InsertEvents(ctx, mismatch); err != nil {
				return err
			}
		}
		if err := s.watchRefresh(ctx, tx, current, dev); err != nil {
			return err
		}
		if err := tx.SpendRefreshToken(ctx, current.ID, now); err != nil {
			return err
		}
		next = &fluxauth.RefreshToken{
			ID: s.newID(), SessionID: current.SessionID, ParentID: current.ID, UserID: current.UserID,
			DeviceName: current.DeviceName, DeviceFingerprint: current.DeviceFingerprint,
			IPAddress: dev.IP, UserAgent: dev.UserAgent,
			SessionCreatedAt: current.SessionCreatedAt, CreatedAt: now, LastUsedAt: now,
			ExpiresAt: s.expiry(now, current.SessionCreatedAt),
		}
		if next.DeviceFingerprint == "" {
			next.DeviceFingerprint = dev.Fingerprint
		}
		nextRaw, next.TokenHash, err = token.NewRefreshToken(s.Rand)
		if err != nil {
			return err
		}
		return tx.InsertRefreshToken(ctx, next)
	})
	if err != nil {
		return nil, err
	}
	if failure != nil {
		s.announceRevoked(ctx, revoked)
		return nil, failure
	}
	u, err := s.Store.UserByID(ctx, next.UserID)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return nil, fluxauth.Errorf(fluxauth.EInvalidRefreshToken, "The refresh token is invalid.")
	} else if err != nil {
		return nil, err
	}
	return s.result(u, next, nextRaw)
}

func (s *Service) fingerprintPolicy() string {
	if s.Config.FingerprintRevoke {
		return "revoke"
	}
	return "record"
}

// watchRefresh records suspicious_token_usage for a refresh that comes from a new IP address and a
// new user agent at once (a token carried to another machine), and for a session refreshed faster
// than Config.SuspiciousRefreshRate. Both are recorded, not refused: either can be innocent.
func (s *Service) watchRefresh(ctx context.Context, tx fluxauth.Tx, current *fluxauth.RefreshToken, dev Device) error {
	if current.IPAddress != "" && current.UserAgent != "" && dev.IP != "" && dev.UserAgent != "" &&
		current.IPAddress != dev.IP && current.UserAgent != dev.UserAgent {
		if err := tx.InsertEvents(ctx, s.event(fluxauth.EventSuspiciousTokenUsage, fluxauth.SeverityWarning, current.UserID, current.ID, dev,
			map[string]any{"reason": "new_ip_and_user_agent", "sessionId": current.SessionID,
				"previousIp": current.IPAddress, "previousUserAgent": current.UserAgent})); err != nil {
			return err
		}
	}
	l := s.Config.SuspiciousRefreshRate
	if s.Limiter == nil || l.IsZero() {
		return nil
	}
	key := ratelimit.Key("refresh:watch", current.SessionID)
	res, err := s.Limiter.Allow(ctx, key, l)
	if err != nil || res.Allowed {
		return err
	}
	if first, err := s.firstIn(ctx, key, l.Period); err != nil || !first {
		return err
	}
	return tx.InsertEvents(ctx, s.event(fluxauth.EventSuspiciousTokenUsage, fluxauth.SeverityWarning, current.UserID, current.ID, dev,
		map[string]any{"reason": "refresh_rate", "sessionId": current.SessionID, "limit": l.String()}))
}

var errRefreshExpired = fluxauth.Errorf(fluxauth.ERefreshTokenExpired, "The session has expired; sign in again.")

// revokeLocked ends the session whose live token is tip, inside tx with the session's lock held,
// and records token_revoked (plus any extra events) in the same transaction.
func (s *Service) revokeLocked(ctx context.Context, tx fluxauth.Tx, tip *fluxauth.RefreshToken, now time.Time, reason, by string, dev Device, extra ...*fluxauth.SecurityEvent) error {
	if _, err := tx.RevokeSession(ctx, tip.SessionID, now, reason); err != nil {
		return err
	}
	events := append(extra, s.event(fluxauth.EventTokenRevoked, fluxauth.SeverityInfo, tip.UserID, tip.ID, dev,
		map[string]any{"reason": reason, "by": by, "sessionId": tip.SessionID}))
	return tx.InsertEvents(ctx, events...)
}

// announceRevoked tells every instance that the session's access tokens are dead. The database
// already says so; this only speeds up the check, so a failure is logged and the database-backed
// check still catches it.
func (s *Service) announceRevoked(ctx context.Context, sessionIDs ...string) {
	until := s.Clock.Now().Add(s.Tokens.TTL() + token.MaxLeeway)
	for _, id := range sessionIDs {
		if id == "" {
			continue
		}
		if err := s.Revocations.Revoked(ctx, id, until); err != nil {
			s.Logger.ErrorContext(ctx, "revocation not announced", "session_id", id, "err", err)
		}
	}
}
