package account

import (
	"context"
	"errors"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/token"
)

// errPasswordChanged fails a password login whose account no longer has the hash the password was
// checked against.
var errPasswordChanged = errors.New("the password hash changed while it was being checked")

// passwordSession starts a session for u, whose password was just checked against u.PasswordHash,
// storing newHash (the password hashed anew, or "" to keep the hash). It holds the account's row and
// first checks that the hash is still the one checked: a claim that removed the password while it
// was being checked wins (errPasswordChanged). Otherwise the claim's revocation could run before
// this session is opened and miss it, or a rehash could put the removed password back. In the same transaction it hands the device
// its device token (deviceTokenFor: the one dl came through, else a new one), bound to the hash as
// it stands once newHash is stored, so a rehash never returns a token that no longer verifies.
func (s *Service) passwordSession(ctx context.Context, u *fluxauth.User, newHash string, dev Device, dl *deviceLogin, meta map[string]any) (*Result, error) {
	now := s.Clock.Now()
	var res *Result
	err := s.update(ctx, func(tx fluxauth.Tx) error {
		cur, err := lockUnchangedPassword(ctx, tx, u)
		if err != nil {
			return err
		}
		if newHash != "" {
			if err := tx.SetPasswordHash(ctx, cur.ID, newHash, now); err != nil {
				return err
			}
			cur.PasswordHash, cur.UpdatedAt = newHash, now
		}
		if res, err = s.startSession(ctx, tx, cur, dev, now, fluxauth.EventLoginSuccess, meta); err != nil {
			return err
		}
		res.DeviceToken, err = s.deviceTokenFor(ctx, tx, cur, dl, now)
		return err
	})
	return res, err
}

// startSession writes a session's first refresh token, with its events, inside tx: a session of a
// user who proved a credential just now.
func (s *Service) startSession(ctx context.Context, tx fluxauth.Tx, u *fluxauth.User, dev Device, now time.Time, event string, meta map[string]any) (*Result, error) {
	first := firstToken{sessionID: s.newID(), authTime: now}
	var err error
	if first.raw, first.hash, err = s.Refreshes.New(s.Rand, first.sessionID); err != nil {
		return nil, err
	}
	return s.openSession(ctx, tx, u, dev, now, first, event, meta)
}

// firstToken is the first refresh token of a session about to be opened.
type firstToken struct {
	sessionID, raw, hash string
	authTime             time.Time // the session's auth_time
}

// openSession writes first, with the session's events, inside tx.
func (s *Service) openSession(ctx context.Context, tx fluxauth.Tx, u *fluxauth.User, dev Device, now time.Time, first firstToken, event string, meta map[string]any) (*Result, error) {
	active, err := tx.ActiveSessions(ctx, u.ID, now)
	if err != nil {
		return nil, err
	}
	sessionID, raw := first.sessionID, first.raw
	rt := &fluxauth.RefreshToken{
		ID: s.newID(), SessionID: sessionID, UserID: u.ID, TokenHash: first.hash,
		DeviceName: dev.Name, DeviceFingerprint: dev.Fingerprint, IPAddress: dev.IP, UserAgent: dev.UserAgent,
		SessionCreatedAt: now, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: s.expiry(now, now), AuthTime: first.authTime,
	}
	if err := tx.InsertRefreshToken(ctx, rt); err != nil {
		return nil, err
	}
	events := []*fluxauth.SecurityEvent{s.event(event, fluxauth.SeverityInfo, u.ID, rt.ID, dev, withSession(meta, rt.SessionID))}
	if len(active) > 0 && !knownDevice(active, dev) {
		events = append(events, s.event(fluxauth.EventMultipleDeviceLogin, fluxauth.SeverityInfo, u.ID, rt.ID, dev,
			map[string]any{"activeSessions": len(active), "sessionId": rt.SessionID, "deviceName": dev.Name}))
	}
	if err := tx.InsertEvents(ctx, events...); err != nil {
		return nil, err
	}
	return s.result(u, rt, raw)
}

// knownDevice reports whether dev matches one of the sessions: by fingerprint when both have one,
// else by device name and user agent.
func knownDevice(sessions []*fluxauth.RefreshToken, dev Device) bool {
	for _, t := range sessions {
		if dev.Fingerprint != "" && t.DeviceFingerprint != "" {
			if dev.Fingerprint == t.DeviceFingerprint {
				return true
			}
			continue
		}
		if t.DeviceName == dev.Name && t.UserAgent == dev.UserAgent {
			return true
		}
	}
	return false
}

func withSession(meta map[string]any, sessionID string) map[string]any {
	m := make(map[string]any, len(meta)+1)
	for k, v := range meta {
		m[k] = v
	}
	m["sessionId"] = sessionID
	return m
}

// expiry extends a refresh token's life from now, but never past the session's absolute limit.
func (s *Service) expiry(now, sessionStart time.Time) time.Time {
	exp := now.Add(s.Config.RefreshTTL)
	if limit := sessionStart.Add(s.Config.SessionMaxAge); exp.After(limit) {
		exp = limit
	}
	return exp
}

func (s *Service) result(u *fluxauth.User, rt *fluxauth.RefreshToken, raw string) (*Result, error) {
	access, _, err := s.Tokens.Sign(token.Claims{UserID: u.ID, SessionID: rt.SessionID, Email: u.Email, UserType: u.UserType, AuthTime: rt.AuthenticatedAt()})
	if err != nil {
		return nil, err
	}
	return &Result{
		User: u, AccessToken: access, RefreshToken: raw, SessionID: rt.SessionID,
		ExpiresIn: int(s.Tokens.TTL() / time.Second),
	}, nil
}

// lockUnchangedPassword locks u's row for the transaction and returns it as it is now, or
// errPasswordChanged when the account is gone or its password hash is no longer the one the caller
// checked (changed or removed since).
func lockUnchangedPassword(ctx context.Context, tx fluxauth.Tx, u *fluxauth.User) (*fluxauth.User, error) {
	cur, err := tx.LockUser(ctx, u.ID)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return nil, errPasswordChanged
	} else if err != nil {
		return nil, err
	}
	if cur.PasswordHash != u.PasswordHash {
		return nil, errPasswordChanged
	}
	return cur, nil
}
