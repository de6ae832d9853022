package account

import (
	"context"
	"errors"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/token"
)

// legacyUse is the namespace of exchanged legacy tokens in the store's table of single uses.
const legacyUse = "legacy"

var (
	// ErrLegacyOff answers the exchange when it is not configured, or after its end, as the server
	// answers a path it does not serve.
	ErrLegacyOff     = fluxauth.Errorf(fluxauth.ENotFound, "No such endpoint.")
	errLegacyInvalid = fluxauth.Errorf(fluxauth.EInvalidToken, "The legacy token is invalid or expired; sign in again.")
	errLegacyUsed    = fluxauth.Errorf(fluxauth.EInvalidToken, "The legacy token has already been exchanged; sign in again.")
)

// Reasons of the failed_login event of a refused exchange, beside token.LegacyError's.
const (
	ReasonInvalidLegacyToken = "invalid_legacy_token"
	reasonLegacyReplayed     = "legacy_token_replayed"
	reasonUnknownUser        = "unknown_user"
)

// LegacyEnabled reports whether the exchange is on at now: configured, and before its end.
func (s *Service) LegacyEnabled(now time.Time) bool {
	return s.Legacy != nil && now.Before(s.Config.LegacyUntil)
}

// ExchangeLegacyToken opens a session for the user a token of the legacy server names, so that the
// cutover logs nobody out. The token must be HS256 under the legacy secret and live (token.
// LegacyVerifier), and name an account that exists.
//
// Each token is exchanged once: its use is recorded, first thing in the transaction that opens the
// session, with the session's ID, until the token would expire anyway. Several tabs share one legacy
// token and exchange it at nearly the same moment, so presenting it again within the refresh grace
// window returns the same session: its first refresh token is derived from the legacy token
// (token.RefreshMinter.FromLegacy), so every instance recomputes it from what the client sent,
// though only hashes are stored, and a request racing the first one waits for it on the use's key.
// Later, the token is refused and the replay recorded as suspicious_token_usage; the session it
// opened is left alone (the first presenter may well be its owner).
//
// The session's auth_time is the legacy token's iat (or, without iat, the max age ago): the user
// proved a credential then, not now, so the exchange passes no recent-authentication check.
func (s *Service) ExchangeLegacyToken(ctx context.Context, raw string, dev Device) (*Result, error) {
	now := s.Clock.Now()
	if !s.LegacyEnabled(now) {
		return nil, ErrLegacyOff
	}
	dev = dev.normalized()
	if err := s.allow(ctx, dev, limit{"legacy:ip", s.Rules.LegacyIP, []string{ipKey(dev.IP)}}); err != nil {
		return nil, err
	}
	if raw == "" {
		var ve fluxauth.ValidationError
		ve.Add("token", "is required")
		return nil, ve.Err()
	}
	c, err := s.Legacy.Verify(raw, now)
	if err != nil {
		var le *token.LegacyError
		if !errors.As(err, &le) {
			return nil, err
		}
		return nil, s.refuseLegacy(ctx, "", le.Reason, dev)
	}
	u, err := s.Store.UserByID(ctx, c.UserID)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return nil, s.refuseLegacy(ctx, "", reasonUnknownUser, dev)
	} else if err != nil {
		return nil, err
	}
	authTime := c.IssuedAt
	if authTime.IsZero() {
		authTime = now.Add(-s.Legacy.MaxAge())
	}
	use := &fluxauth.IDTokenUse{Provider: legacyUse, Key: c.Key, UsedAt: now, ExpiresAt: c.Until, SessionID: s.newID()}
	var (
		res     *Result
		prior   *fluxauth.IDTokenUse
		failure error // a refusal committed with the revocation it caused
	)
	err = s.update(ctx, func(tx fluxauth.Tx) error {
		res, prior, failure = nil, nil, nil
		first, err := tx.UseIDToken(ctx, use)
		if err != nil {
			return err
		}
		if !first {
			if prior, err = tx.IDTokenUse(ctx, legacyUse, c.Key); err != nil {
				return err
			}
			if now.After(prior.UsedAt.Add(s.Config.RefreshGrace)) || prior.SessionID == "" {
				return nil // refused after the transaction, which wrote nothing
			}
			res, failure, err = s.legacySession(ctx, tx, raw, prior.SessionID, dev, now)
			return err
		}
		ft := firstToken{sessionID: use.SessionID, authTime: authTime}
		if ft.raw, ft.hash, err = s.Refreshes.FromLegacy(raw, ft.sessionID); err != nil {
			return err
		}
		meta := map[string]any{"method": "legacy_token"}
		if !c.IssuedAt.IsZero() {
			meta["legacyIssuedAt"] = c.IssuedAt.Format(time.RFC3339)
		}
		res, err = s.openSession(ctx, tx, u, dev, now, ft, fluxauth.EventLegacyTokenExchanged, meta)
		return err
	})
	if err != nil {
		return nil, err
	}
	if failure != nil {
		s.announceRevoked(ctx, prior.SessionID)
		return nil, failure
	}
	if res == nil {
		if err := s.record(ctx, s.event(fluxauth.EventSuspiciousTokenUsage, fluxauth.SeverityWarning, u.ID, "", dev, map[string]any{
			"reason": reasonLegacyReplayed, "sessionId": prior.SessionID, "exchangedAt": prior.UsedAt.UTC().Format(time.RFC3339Nano),
		}), dev); err != nil {
			return nil, err
		}
		return nil, errLegacyUsed
	}
	return res, nil
}

// legacySession answers a second exchange of a legacy token within the grace window: the session
// the first one opened, through its live token, which is the first token derived from the legacy
// token or, if a tab has refreshed it meanwhile, a successor of it. It writes nothing but what the
// device-fingerprint rule does, as for any grace hit; fail is a refusal to commit with the
// revocation that rule made.
func (s *Service) legacySession(ctx context.Context, tx fluxauth.Tx, raw, sessionID string, dev Device, now time.Time) (res *Result, fail, err error) {
	rawFirst, hash, err := s.Refreshes.FromLegacy(raw, sessionID)
	if err != nil {
		return nil, nil, err
	}
	first, u, err := tx.LockRefreshToken(ctx, hash)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return nil, nil, errLegacyInvalid
	} else if err != nil {
		return nil, nil, err
	}
	if u == nil || first.Revoked() {
		return nil, nil, errRefreshRevoked
	}
	tip, rawTip := first, rawFirst
	if first.Spent() {
		if tip, err = tx.SessionTip(ctx, sessionID); errors.Is(err, fluxauth.ErrNotFound) {
			return nil, nil, errRefreshRevoked
		} else if err != nil {
			return nil, nil, err
		}
		if rawTip, err = s.walkTo(rawFirst, tip); err != nil {
			return nil, nil, err
		}
	}
	if !now.Before(tip.ExpiresAt) {
		return nil, nil, errRefreshExpired
	}
	events, fail, err := s.checkFingerprint(ctx, tx, tip, dev, now)
	if err != nil || fail != nil {
		return nil, fail, err
	}
	if err := tx.InsertEvents(ctx, events...); err != nil {
		return nil, nil, err
	}
	res, err = s.result(u, tip, rawTip)
	return res, nil, err
}

// refuseLegacy records a refused exchange as a failed sign-in, with why, and returns the one answer
// every refusal gets: which check failed helps only whoever is probing.
func (s *Service) refuseLegacy(ctx context.Context, userID, reason string, dev Device) error {
	if err := s.record(ctx, &fluxauth.SecurityEvent{
		Type: fluxauth.EventFailedLogin, Severity: fluxauth.SeverityWarning, UserID: userID,
		Metadata: map[string]any{"reason": ReasonInvalidLegacyToken, "detail": reason, "method": "legacy_token"},
	}, dev); err != nil {
		return err
	}
	return errLegacyInvalid
}
