package account

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// RequireAdmin lets only callers whose account, read fresh from the database, is an admin. The
// access token's userType claim is not believed: a demoted admin loses access at once, not when
// their access token expires. A caller whose account is gone gets Me's invalid_token.
func (s *Service) RequireAdmin(ctx context.Context, p *Principal) error {
	u, err := s.Me(ctx, p)
	if err != nil {
		return err
	}
	if u.UserType != fluxauth.UserTypeAdmin {
		return fluxauth.Errorf(fluxauth.EForbidden, "This needs an administrator.")
	}
	return nil
}

var errNoSuchUser = fluxauth.Errorf(fluxauth.ENotFound, "No such user.")

// AdminUser returns the user an admin named. A user that does not exist (or an ID that is not a
// user ID at all) is not_found, so an admin is told when they mistyped.
func (s *Service) AdminUser(ctx context.Context, userID string) (*fluxauth.User, error) {
	if !fluxauth.ValidUserID(userID) {
		return nil, errNoSuchUser
	}
	u, err := s.Store.UserByID(ctx, userID)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return nil, errNoSuchUser
	}
	return u, err
}

// adminActor is how the audit log names an admin who acted.
func adminActor(admin *Principal) string { return "admin:" + admin.UserID }

// AdminRevokeUserSessions ends every live session of the user userID on behalf of admin, who must
// have passed RequireAdmin. The audit log names the admin.
func (s *Service) AdminRevokeUserSessions(ctx context.Context, admin *Principal, userID string, dev Device) error {
	if _, err := s.AdminUser(ctx, userID); err != nil {
		return err
	}
	return s.RevokeUserSessions(ctx, userID, "admin_revoked", adminActor(admin), dev)
}

// AdminRevokeSession ends one session, whoever's it is, on behalf of admin, who must have passed
// RequireAdmin: its token_revoked event names the admin ("by"), and its access tokens answer
// session_revoked on every instance (announced as every revocation is). A session that does not
// exist or has already ended is not_found.
func (s *Service) AdminRevokeSession(ctx context.Context, admin *Principal, sessionID string, dev Device) error {
	if _, err := uuid.Parse(sessionID); err != nil {
		return errNoSuchSession
	}
	_, owner, err := s.Store.SessionRevoked(ctx, sessionID)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return errNoSuchSession
	} else if err != nil {
		return err
	}
	return s.revokeSessions(ctx, owner, []string{sessionID}, "admin_revoked", adminActor(admin), dev, true)
}

// LockoutState is an account's failed-login lockout as the admin API shows it.
type LockoutState struct {
	Locked bool
	// RetryAfter is how long until the next login attempt would be allowed; 0 when not locked.
	RetryAfter time.Duration
}

// Lockout reads the user's failed-login lockout without taking an attempt (a Peek: for display,
// never a gate). Without a limiter or a lockout rule nobody is ever locked.
func (s *Service) Lockout(ctx context.Context, userID string) (LockoutState, error) {
	if s.Limiter == nil || s.Rules.Lockout.IsZero() {
		return LockoutState{}, nil
	}
	res, err := s.Limiter.Peek(ctx, lockoutKey("", userID), s.Rules.Lockout)
	if err != nil {
		return LockoutState{}, err
	}
	if res.Allowed {
		return LockoutState{}, nil
	}
	return LockoutState{Locked: true, RetryAfter: res.RetryAfter}, nil
}

// AdminUnlock clears the user's failed-login lockout on behalf of admin, who must have passed
// RequireAdmin. The account_unlocked event naming the admin is recorded first: it is both the
// audit trail and how the other instances learn of the unlock (their feeds clear the lockout in
// their own limiters, ClearLocalLockout), so an unlock the audit log cannot take (503) changes
// nothing. The limiter is then reset here: in Redis, for every instance, when it is configured.
func (s *Service) AdminUnlock(ctx context.Context, admin *Principal, userID string, dev Device) error {
	if _, err := s.AdminUser(ctx, userID); err != nil {
		return err
	}
	if err := s.record(ctx, s.event(fluxauth.EventAccountUnlocked, fluxauth.SeverityInfo, userID, "", dev,
		map[string]any{"by": adminActor(admin)}), dev); err != nil {
		return err
	}
	if s.Limiter == nil {
		return nil
	}
	return s.Limiter.Reset(ctx, lockoutKey("", userID))
}

// localResetter is a limiter that also keeps counts of its own beside a shared store
// (ratelimit.Fallback): the shared one is reset once, by the instance that unlocked.
type localResetter interface {
	ResetLocal(ctx context.Context, key string) error
}

// ClearLocalLockout clears, in this instance's own limiter, the lockout of the account an
// account_unlocked event names: the live feed runs it on every instance for every such event, which
// is what makes an unlock effective everywhere without Redis. Failures are logged: the lockout then
// ends by itself.
func (s *Service) ClearLocalLockout(ctx context.Context, e *fluxauth.SecurityEvent) {
	if s.Limiter == nil || e.UserID == "" {
		return
	}
	key := lockoutKey("", e.UserID)
	var err error
	if l, ok := s.Limiter.(localResetter); ok {
		err = l.ResetLocal(ctx, key)
	} else {
		err = s.Limiter.Reset(ctx, key)
	}
	if err != nil {
		s.Logger.WarnContext(ctx, "lockout: clearing an unlocked account's local count failed", "user_id", e.UserID, "err", err)
	}
}
