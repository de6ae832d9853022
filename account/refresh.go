package account

import (
	"context"
	"errors"
	"time"

	"github.com/fluxstudio/fluxauth"
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
	var (
		next    *fluxauth.RefreshToken
		failure error // committed together with the revocation it caused
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
		raw, next.TokenHash, err = token.NewRefreshToken(s.Rand)
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
	return s.result(u, next, raw)
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
