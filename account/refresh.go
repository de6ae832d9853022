package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/token"
)

var (
	errInvalidRefreshToken = fluxauth.Errorf(fluxauth.EInvalidRefreshToken, "The refresh token is invalid.")
	errRefreshRevoked      = fluxauth.Errorf(fluxauth.ERefreshTokenRevoked, "The session has been ended; sign in again.")
	errRefreshExpired      = fluxauth.Errorf(fluxauth.ERefreshTokenExpired, "The session has expired; sign in again.")
)

// Refresh spends a refresh token and returns its successor with a new access token.
//
// Reuse detection is built so honest clients are never logged out while theft is still caught:
//   - a spent token presented within the grace window (two tabs refreshing at once) rotates the
//     session's live token again, so the chain stays single;
//   - a spent token whose successor was never used is a lost response: it is answered the same way,
//     at any time before the session expires;
//   - any other spent token means two parties hold the chain: the session is revoked.
//
// The common case costs one transaction of two statements: LockRefreshToken (token, user and session
// lock) and RotateRefreshToken (spend and insert).
func (s *Service) Refresh(ctx context.Context, raw string, dev Device) (*Result, error) {
	if raw == "" {
		return nil, errInvalidRefreshToken
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
		user    *fluxauth.User
		failure error // a refusal that is committed together with the revocation it caused
		revoked string
	)
	err := s.update(ctx, func(tx fluxauth.Tx) error {
		next, failure, revoked = nil, nil, ""
		rt, u, err := tx.LockRefreshToken(ctx, hash)
		if errors.Is(err, fluxauth.ErrNotFound) {
			return errInvalidRefreshToken
		} else if err != nil {
			return err
		}
		if u == nil {
			return errInvalidRefreshToken
		}
		user = u
		// What LockRefreshToken read may predate the lock. RotateRefreshToken checks again; when a
		// request that committed meanwhile has spent or revoked the token, it is read anew (now
		// under the lock) and judged once more.
		for attempt := 0; ; attempt++ {
			current, fail, err := s.judge(ctx, tx, rt, dev, now)
			if err != nil {
				return err
			}
			var events []*fluxauth.SecurityEvent
			if fail == nil {
				events, fail, err = s.checkFingerprint(ctx, tx, current, dev, now)
				if err != nil {
					return err
				}
			}
			if fail != nil {
				failure, revoked = fail, rt.SessionID
				return nil
			}
			next = s.successor(current, dev, now)
			nextRaw, next.TokenHash, err = token.NewRefreshToken(s.Rand)
			if err != nil {
				return err
			}
			ok, err := tx.RotateRefreshToken(ctx, current.ID, next, now)
			if err != nil {
				return err
			}
			if ok {
				watched, err := s.watchRefresh(ctx, current, dev, now)
				if err != nil {
					return err
				}
				return tx.InsertEvents(ctx, append(events, watched...)...)
			}
			if attempt > 0 {
				return fmt.Errorf("account: refresh token %s changed under its session's lock", current.ID)
			}
			if rt, err = tx.RefreshTokenByHash(ctx, hash); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if failure != nil {
		s.announceRevoked(ctx, revoked)
		return nil, failure
	}
	return s.result(user, next, nextRaw)
}

// judge decides what presenting rt means, with the session's lock held. It returns the live token
// to rotate: rt itself, or the session's tip when rt is spent but may still be used (grace window,
// lost response). Reuse beyond those revokes the session in tx and returns the refusal as fail, to be
// reported once the revocation has committed; err is a refusal that changes nothing.
func (s *Service) judge(ctx context.Context, tx fluxauth.Tx, rt *fluxauth.RefreshToken, dev Device, now time.Time) (current *fluxauth.RefreshToken, fail, err error) {
	if rt.Revoked() {
		return nil, nil, errRefreshRevoked
	}
	if !now.Before(rt.SessionCreatedAt.Add(s.Config.SessionMaxAge)) {
		return nil, nil, errRefreshExpired
	}
	current = rt
	if rt.Spent() {
		tip, err := tx.SessionTip(ctx, rt.SessionID)
		if errors.Is(err, fluxauth.ErrNotFound) {
			return nil, nil, errRefreshRevoked // revoked after rt was read
		} else if err != nil {
			return nil, nil, err
		}
		inGrace := !now.After(rt.SpentAt.Add(s.Config.RefreshGrace))
		lostResponse := tip.ParentID == rt.ID
		if !inGrace && !lostResponse {
			err := s.revokeLocked(ctx, tx, tip, now, "refresh_token_reused", "system", dev,
				s.event(fluxauth.EventSessionHijackAttempt, fluxauth.SeverityCritical, rt.UserID, tip.ID, dev, map[string]any{
					"reason": "refresh_token_reused", "sessionId": rt.SessionID, "spentTokenId": rt.ID,
					"spentAt": rt.SpentAt.Format(time.RFC3339Nano),
				}))
			if err != nil {
				return nil, nil, err
			}
			return nil, fluxauth.Errorf(fluxauth.ERefreshTokenReused,
				"The refresh token was already used; the session has been ended for safety."), nil
		}
		current = tip
	}
	if !now.Before(current.ExpiresAt) {
		return nil, nil, errRefreshExpired
	}
	if err := s.allow(ctx, "refresh:session", s.Rules.RefreshSession, dev, current.SessionID); err != nil {
		return nil, nil, err
	}
	return current, nil, nil
}

// checkFingerprint compares the presented device fingerprint with the session's. Under the revoke
// policy a mismatch ends the session in tx and comes back as fail; under the record policy the
// mismatch is returned as an event to record with the rotation.
func (s *Service) checkFingerprint(ctx context.Context, tx fluxauth.Tx, current *fluxauth.RefreshToken, dev Device, now time.Time) (events []*fluxauth.SecurityEvent, fail, err error) {
	if dev.Fingerprint == "" || current.DeviceFingerprint == "" || dev.Fingerprint == current.DeviceFingerprint {
		return nil, nil, nil
	}
	mismatch := s.event(fluxauth.EventDeviceFingerprintMismatch, fluxauth.SeverityWarning, current.UserID, current.ID, dev,
		map[string]any{"sessionId": current.SessionID, "policy": s.fingerprintPolicy()})
	if !s.Config.FingerprintRevoke {
		return []*fluxauth.SecurityEvent{mismatch}, nil, nil
	}
	err = s.revokeLocked(ctx, tx, current, now, "fingerprint_mismatch", "system", dev, mismatch,
		s.event(fluxauth.EventSessionHijackAttempt, fluxauth.SeverityCritical, current.UserID, current.ID, dev,
			map[string]any{"reason": "fingerprint_mismatch", "sessionId": current.SessionID}))
	if err != nil {
		return nil, nil, err
	}
	return nil, fluxauth.Errorf(fluxauth.ERefreshTokenRevoked, "The session has been ended for safety; sign in again."), nil
}

func (s *Service) fingerprintPolicy() string {
	if s.Config.FingerprintRevoke {
		return "revoke"
	}
	return "record"
}

// successor is the token current rotates into: the same session and device, the request's address,
// and a lifetime extended from now but never past the session's limit.
func (s *Service) successor(current *fluxauth.RefreshToken, dev Device, now time.Time) *fluxauth.RefreshToken {
	next := &fluxauth.RefreshToken{
		ID: s.newID(), SessionID: current.SessionID, ParentID: current.ID, UserID: current.UserID,
		DeviceName: current.DeviceName, DeviceFingerprint: current.DeviceFingerprint,
		IPAddress: dev.IP, UserAgent: dev.UserAgent,
		SessionCreatedAt: current.SessionCreatedAt, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: s.expiry(now, current.SessionCreatedAt),
	}
	if next.DeviceFingerprint == "" {
		next.DeviceFingerprint = dev.Fingerprint
	}
	return next
}

// watchRefresh returns suspicious_token_usage events for a refresh that comes from a new IP address
// and a new user agent at once (a token carried to another machine), and for a session refreshed
// sooner after its previous refresh than Config.SuspiciousRefreshRate allows (at most one such event
// per session and period). Both are recorded, not refused: either can be innocent.
func (s *Service) watchRefresh(ctx context.Context, current *fluxauth.RefreshToken, dev Device, now time.Time) ([]*fluxauth.SecurityEvent, error) {
	var events []*fluxauth.SecurityEvent
	if current.IPAddress != "" && current.UserAgent != "" && dev.IP != "" && dev.UserAgent != "" &&
		current.IPAddress != dev.IP && current.UserAgent != dev.UserAgent {
		events = append(events, s.event(fluxauth.EventSuspiciousTokenUsage, fluxauth.SeverityWarning, current.UserID, current.ID, dev,
			map[string]any{"reason": "new_ip_and_user_agent", "sessionId": current.SessionID,
				"previousIp": current.IPAddress, "previousUserAgent": current.UserAgent}))
	}
	l := s.Config.SuspiciousRefreshRate
	if l.IsZero() || current.ParentID == "" {
		return events, nil
	}
	// The previous refresh created current; sooner than one refresh interval of the rate is too fast.
	if now.Sub(current.CreatedAt) >= l.Period/time.Duration(l.Rate) {
		return events, nil
	}
	first, err := s.firstIn(ctx, "refresh:fast:"+current.SessionID, l.Period)
	if err != nil || !first {
		return events, err
	}
	return append(events, s.event(fluxauth.EventSuspiciousTokenUsage, fluxauth.SeverityWarning, current.UserID, current.ID, dev,
		map[string]any{"reason": "refresh_rate", "sessionId": current.SessionID, "limit": l.String()})), nil
}

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
