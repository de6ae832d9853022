package account

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	errRefreshReused       = fluxauth.Errorf(fluxauth.ERefreshTokenReused,
		"The refresh token was already used; the session has been ended for safety.")
)

// maxRefreshTokenLen bounds what is hashed and looked up: every token fluxauth mints is shorter.
const maxRefreshTokenLen = 128

// maxGraceWalk bounds how many links a spent token is walked forward to reach its session's live
// token within the grace window. The per-session rate limit keeps real chains far shorter.
const maxGraceWalk = 64

// verdict is what presenting a refresh token means, decided by judge.
type verdict int

const (
	// rotate: the token is live; spend it and return its successor.
	rotate verdict = iota + 1
	// returnTip: the token was spent within the grace window (racing tabs, several processes of one
	// app); return the session's live token as it is and write nothing.
	returnTip
	// reissue: the token was spent earlier, but its successor was never used (the client lost the
	// response); return that same successor again and mark it reissued.
	reissue
	// reuse: two parties hold the chain; revoke the session.
	reuse
)

func (v verdict) String() string {
	return [...]string{"", "rotate", "return_tip", "reissue", "reuse"}[v]
}

// Refresh spends a refresh token and returns its successor with a new access token.
//
// The rules, with P the presented token, S the token P was rotated into, and the tip the session's
// live token. Unknown, revoked and expired tokens (P's own expiry, or the session's absolute limit)
// are refused first and change nothing.
//
//	P       since P was spent  S       P was reissued  result
//	live    –                  –       –               rotate: return S (new), P spent
//	spent   within grace       any     any             return the tip; write nothing
//	spent   past grace         unused  no              retry: return S again; mark S reissued
//	spent   past grace         unused  yes             reuse: revoke the session
//	spent   past grace         used    any             reuse: revoke the session
//
// Successors are derived from the token they replace (token.RefreshMinter), so every request that
// presents one token gets the same successor, on any instance, though only hashes are stored. A
// client that lost one response keeps working: presenting P again returns the same S, at any time
// before the session expires. But a token that was itself handed out by such a retry earns no retry
// of its own, per link: otherwise a thief holding a spent token could alternate with its victim
// forever, each side's token always one behind an unused successor. Two lost responses in a row are
// rare enough to treat as reuse. Grace hits and retries are not rotations: they extend nothing and
// move no last-used time. The device-fingerprint rule applies to every row.
//
// Rate limits are charged before the transaction (the session is named in the token, authenticated
// by its tag), because Store.Update may run its function again after a serialization failure and
// must hold no lock across a Redis round trip. Events that must commit with the change are inserted
// in the transaction; the rest are recorded after commit.
func (s *Service) Refresh(ctx context.Context, raw string, dev Device) (*Result, error) {
	if raw == "" || len(raw) > maxRefreshTokenLen {
		return nil, errInvalidRefreshToken
	}
	sessionID, legacy, err := s.Refreshes.SessionID(raw)
	if err != nil {
		return nil, errInvalidRefreshToken
	}
	hash := token.HashRefreshToken(raw)
	dev.Name = "" // a refresh keeps the session's device name
	dev = dev.normalized()
	now := s.Clock.Now()
	// One limiter call for both rules (one Redis round trip). A legacy token (minted before tokens
	// named their session) is charged to no session: it rotates at most once into a token that does.
	limits := []limit{{"refresh:ip", s.Rules.RefreshIP, []string{ipKey(dev.IP)}}}
	if !legacy {
		limits = append(limits, limit{"refresh:session", s.Rules.RefreshSession, []string{sessionID}})
	}
	if err := s.allow(ctx, dev, limits...); err != nil {
		return nil, err
	}
	var out refreshOutcome
	err = s.update(ctx, func(tx fluxauth.Tx) error {
		out = refreshOutcome{}
		return s.refreshLocked(ctx, tx, raw, hash, sessionID, dev, now, &out)
	})
	if err != nil {
		return nil, err
	}
	if out.failure != nil {
		s.announceRevoked(ctx, out.revoked)
		return nil, out.failure
	}
	if out.verdict == rotate {
		s.watchRefreshRate(ctx, out.spent, dev, now)
	}
	return s.result(out.user, out.issued, out.raw)
}

// refreshOutcome is what the refresh transaction decided; refreshLocked fills it anew on every
// attempt of the transaction.
type refreshOutcome struct {
	verdict verdict
	user    *fluxauth.User
	spent   *fluxauth.RefreshToken // the token a rotation spent
	issued  *fluxauth.RefreshToken // the token returned
	raw     string                 // the returned token itself: sent to the client, never stored
	failure error                  // a refusal committed together with the revocation it caused
	revoked string                 // the session that revocation ended
}

// refreshLocked applies Refresh's rules inside tx, with the session's lock held from the first read.
func (s *Service) refreshLocked(ctx context.Context, tx fluxauth.Tx, raw, hash, sessionID string, dev Device, now time.Time, out *refreshOutcome) error {
	p, u, err := tx.LockRefreshToken(ctx, hash)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return errInvalidRefreshToken
	} else if err != nil {
		return err
	}
	if u == nil || (sessionID != "" && p.SessionID != sessionID) {
		return errInvalidRefreshToken
	}
	out.user = u
	// What LockRefreshToken read may predate the lock. RotateRefreshToken checks again; when a
	// request that committed meanwhile has spent or revoked the token, it is read anew (now under
	// the lock) and judged once more.
	for attempt := 0; ; attempt++ {
		var tip *fluxauth.RefreshToken
		if p.Spent() {
			tip, err = tx.SessionTip(ctx, p.SessionID)
			if errors.Is(err, fluxauth.ErrNotFound) {
				tip = nil
			} else if err != nil {
				return err
			}
		}
		v, err := s.judge(p, tip, now)
		if err != nil {
			return err
		}
		out.verdict = v
		if v == reuse {
			out.failure, out.revoked = errRefreshReused, p.SessionID
			return s.revokeLocked(ctx, tx, tip, now, "refresh_token_reused", "system", dev,
				s.event(fluxauth.EventSessionHijackAttempt, fluxauth.SeverityCritical, p.UserID, tip.ID, dev, map[string]any{
					"reason": "refresh_token_reused", "sessionId": p.SessionID, "spentTokenId": p.ID,
					"spentAt": p.SpentAt.Format(time.RFC3339Nano), "reissued": !p.ReissuedAt.IsZero(),
				}))
		}
		live := p
		if v != rotate {
			live = tip
		}
		events, fail, err := s.checkFingerprint(ctx, tx, live, dev, now)
		if err != nil {
			return err
		}
		if fail != nil {
			out.failure, out.revoked = fail, live.SessionID
			return nil
		}
		switch v {
		case returnTip:
			out.issued = tip
			if out.raw, err = s.walkTo(raw, tip); err != nil {
				return err
			}
			if events, err = s.watchOtherClient(ctx, tx, p, tip, dev, now, "grace_other_client", events); err != nil {
				return err
			}
			return tx.InsertEvents(ctx, events...) // a recorded fingerprint mismatch, if any
		case reissue:
			out.issued = tip
			if out.raw, err = s.walkTo(raw, tip); err != nil {
				return err
			}
			if err := tx.MarkReissued(ctx, tip.ID, now); err != nil {
				return err
			}
			if events, err = s.watchOtherClient(ctx, tx, p, tip, dev, now, "reissue_other_client", events); err != nil {
				return err
			}
			return tx.InsertEvents(ctx, events...)
		}
		next := s.successor(p, dev, now)
		if out.raw, next.TokenHash, err = s.Refreshes.Successor(raw, p.SessionID); err != nil {
			return err
		}
		ok, err := tx.RotateRefreshToken(ctx, p.ID, next, now)
		if err != nil {
			return err
		}
		if ok {
			out.spent, out.issued = p, next
			return tx.InsertEvents(ctx, append(events, s.watchRefresh(p, dev)...)...)
		}
		if attempt > 0 {
			return fmt.Errorf("account: refresh token %s changed under its session's lock", p.ID)
		}
		if p, err = tx.RefreshTokenByHash(ctx, hash); err != nil {
			return err
		}
	}
}

// judge decides what presenting p means, given the session's live token (nil when it has none). It
// reads and writes nothing, so every row of Refresh's table is one case of it.
func (s *Service) judge(p, tip *fluxauth.RefreshToken, now time.Time) (verdict, error) {
	if p.Revoked() {
		return 0, errRefreshRevoked
	}
	if !now.Before(p.SessionCreatedAt.Add(s.Config.SessionMaxAge)) || !now.Before(p.ExpiresAt) {
		return 0, errRefreshExpired
	}
	if !p.Spent() {
		return rotate, nil
	}
	if tip == nil {
		return 0, errRefreshRevoked // the session was revoked after p was read
	}
	if !now.Before(tip.ExpiresAt) {
		return 0, errRefreshExpired
	}
	switch {
	case !now.After(p.SpentAt.Add(s.Config.RefreshGrace)):
		return returnTip, nil
	case tip.ParentID == p.ID && p.ReissuedAt.IsZero():
		return reissue, nil
	default:
		return reuse, nil
	}
}

// walkTo derives the successors of raw, link by link, until it reaches the token tip, and returns
// tip's raw value. A chain rotated before successors were derived cannot be walked; the client then
// has to sign in again, but nothing is revoked.
func (s *Service) walkTo(raw string, tip *fluxauth.RefreshToken) (string, error) {
	for range maxGraceWalk {
		next, hash, err := s.Refreshes.Successor(raw, tip.SessionID)
		if err != nil {
			return "", err
		}
		if hash == tip.TokenHash {
			return next, nil
		}
		raw = next
	}
	return "", errInvalidRefreshToken
}

// checkFingerprint compares the presented device fingerprint with the session's. Under the revoke
// policy a mismatch ends the session in tx and comes back as fail; under the record policy the
// mismatch is returned as an event to record with the answer.
func (s *Service) checkFingerprint(ctx context.Context, tx fluxauth.Tx, current *fluxauth.RefreshToken, dev Device, now time.Time) (events []*fluxauth.SecurityEvent, fail, err error) {
	// A refresh that presents no fingerprint for a fingerprinted session is a mismatch too: otherwise
	// a thief holding the token would simply leave it out.
	if current.DeviceFingerprint == "" || dev.Fingerprint == current.DeviceFingerprint {
		return nil, nil, nil
	}
	meta := map[string]any{"sessionId": current.SessionID, "policy": s.fingerprintPolicy()}
	if dev.Fingerprint == "" {
		meta["fingerprintMissing"] = true
	}
	mismatch := s.event(fluxauth.EventDeviceFingerprintMismatch, fluxauth.SeverityWarning, current.UserID, current.ID, dev, meta)
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
// and a lifetime extended from now but never past the session's limit. The caller sets its hash.
func (s *Service) successor(current *fluxauth.RefreshToken, dev Device, now time.Time) *fluxauth.RefreshToken {
	next := &fluxauth.RefreshToken{
		ID: s.newID(), SessionID: current.SessionID, ParentID: current.ID, UserID: current.UserID,
		DeviceName: current.DeviceName, DeviceFingerprint: current.DeviceFingerprint,
		IPAddress: dev.IP, UserAgent: dev.UserAgent,
		SessionCreatedAt: current.SessionCreatedAt, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: s.expiry(now, current.SessionCreatedAt), AuthTime: current.AuthTime,
	}
	if next.DeviceFingerprint == "" {
		next.DeviceFingerprint = dev.Fingerprint
	}
	return next
}

// watchRefresh returns a suspicious_token_usage event for a rotation that comes from a new IP address
// and a new user agent at once (a token carried to another machine). It is recorded, not refused:
// it can be innocent.
func (s *Service) watchRefresh(current *fluxauth.RefreshToken, dev Device) []*fluxauth.SecurityEvent {
	if current.IPAddress == "" || current.UserAgent == "" || dev.IP == "" || dev.UserAgent == "" ||
		current.IPAddress == dev.IP || current.UserAgent == dev.UserAgent {
		return nil
	}
	return []*fluxauth.SecurityEvent{s.event(fluxauth.EventSuspiciousTokenUsage, fluxauth.SeverityWarning, current.UserID, current.ID, dev,
		map[string]any{"reason": "new_ip_and_user_agent", "sessionId": current.SessionID,
			"previousIp": current.IPAddress, "previousUserAgent": current.UserAgent})}
}

// graceWatchProvider is the namespace of the once-per-session-and-client marks of watchOtherClient
// in the store's table of single uses (Tx.UseIDToken), which is shared by every instance, keeps a
// mark until its ExpiresAt (then cleanup removes it) and lets exactly one of concurrent
// transactions record a given key.
const graceWatchProvider = "grace-client"

// watchOtherClient appends to events a suspicious_token_usage for a grace hit or reissue (reason)
// answering another client than the one that rotated the chain to tip: the answer stays as it is
// (racing tabs and lost responses look alike from one client, and a server-side renderer is a second
// client), but a thief following the owner's rotations with one copied token is no longer silent.
// Another client is another device fingerprint where the session has one (checkFingerprint already
// records that), else another User-Agent and another network (networkKey). It is recorded the first
// time a client does so in the session only: the mark is taken in tx, under the session's lock,
// in the shared store, so instances agree.
func (s *Service) watchOtherClient(ctx context.Context, tx fluxauth.Tx, p, tip *fluxauth.RefreshToken, dev Device, now time.Time, reason string, events []*fluxauth.SecurityEvent) ([]*fluxauth.SecurityEvent, error) {
	if !s.Config.WatchGraceClients || tip.DeviceFingerprint != "" ||
		tip.UserAgent == "" || tip.IPAddress == "" || dev.UserAgent == "" || dev.IP == "" ||
		dev.UserAgent == tip.UserAgent || networkKey(dev.IP) == networkKey(tip.IPAddress) {
		return events, nil
	}
	key := sha256.Sum256([]byte(tip.SessionID + "\x00" + dev.UserAgent + "\x00" + networkKey(dev.IP)))
	first, err := tx.UseIDToken(ctx, &fluxauth.IDTokenUse{
		Provider: graceWatchProvider, Key: hex.EncodeToString(key[:]), UsedAt: now,
		ExpiresAt: p.SessionCreatedAt.Add(s.Config.SessionMaxAge), // no refresh of the session after it
	})
	if err != nil || !first {
		return events, err
	}
	return append(events, s.event(fluxauth.EventSuspiciousTokenUsage, fluxauth.SeverityWarning, tip.UserID, tip.ID, dev,
		map[string]any{"reason": reason, "sessionId": tip.SessionID, "spentTokenId": p.ID,
			"rotatedByIp": tip.IPAddress, "rotatedByUserAgent": tip.UserAgent})), nil
}

// watchRefreshRate records suspicious_token_usage, after the rotation committed, when a session was
// refreshed sooner after its previous rotation than Config.SuspiciousRefreshRate allows, at most once
// per session and period (the dedupe is a limiter call, so it cannot run inside the transaction).
// The rotation stands either way; a failure to record is logged.
func (s *Service) watchRefreshRate(ctx context.Context, spent *fluxauth.RefreshToken, dev Device, now time.Time) {
	l := s.Config.SuspiciousRefreshRate
	if l.IsZero() || spent.ParentID == "" || now.Sub(spent.CreatedAt) >= l.Period/time.Duration(l.Rate) {
		return
	}
	first, err := s.firstIn(ctx, "refresh:fast:"+spent.SessionID, l.Period)
	if err == nil && first {
		err = s.record(ctx, s.event(fluxauth.EventSuspiciousTokenUsage, fluxauth.SeverityWarning, spent.UserID, spent.ID, dev,
			map[string]any{"reason": "refresh_rate", "sessionId": spent.SessionID, "limit": l.String()}), dev)
	}
	if err != nil {
		s.Logger.ErrorContext(ctx, "suspicious refresh rate not recorded", "session_id", spent.SessionID, "err", err)
	}
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
		if err := s.Revocations.Announce(ctx, id, until); err != nil {
			s.Logger.ErrorContext(ctx, "revocation not announced", "session_id", id, "err", err)
		}
	}
}
