package account

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/token"
)

// Device tokens keep the lockout from being a weapon against the account's owner (OWASP's "device
// cookies"). Every password sign-in (signup, login) hands the device a token bound to the account
// and its current password; a later login that carries a genuine, live token of the account it
// names is counted on that token's own budget of deviceTokenFailures consecutive failures, not on
// the account's lockout. So an attacker's guesses from anywhere lock the account for everyone
// except the devices its owner has signed in on, and a stolen token buys a handful of guesses, once.
//
// A token stops counting, and its logins are plain ones again, when it is forged or altered, is
// another account's, has expired (Config.DeviceTokenTTL after its last successful login), was
// minted before the password last changed (its HMAC covers the password hash), was revoked (log
// out-all, account takeover: revokeDeviceTokens), or has used up its budget: then it is dead for
// good, even with the right password. A success through a token resets its own budget and
// extends its life, and leaves the account's lockout as it was: the owner signing in does not
// hand the attacker a fresh set of guesses.

// deviceTokenFailures is one device token's budget of consecutive wrong passwords.
const deviceTokenFailures = 5

// Values of the "deviceToken" metadata of login events: what a presented device token did.
const (
	deviceTokenIgnored = "ignored" // not usable: the login was a plain one
	deviceTokenCounted = "counted" // a failure counted on the token's budget
	deviceTokenEnded   = "ended"   // a failure that used up the budget: the token is dead
	deviceTokenUsed    = "used"    // a success through the token
)

// deviceLogin is a login counted on a device token's budget rather than on the account's lockout.
type deviceLogin struct {
	id  string // the token's ID: events name it, as they name sessions
	raw string // the token, handed back when the login succeeds
}

// attemptDeviceToken takes one try from the budget of the device token raw when raw is a genuine
// token of u (minted for u and u's current password) that is alive, unexpired and within its
// budget. It returns nil for anything else, tokens presented for unknown emails included: the
// login is then a plain one, and the account's lockout counts it.
func (s *Service) attemptDeviceToken(ctx context.Context, raw string, u *fluxauth.User) (*deviceLogin, error) {
	if raw == "" || len(raw) > token.MaxDeviceTokenLen || u == nil || u.PasswordHash == "" {
		return nil, nil
	}
	id, err := s.Devices.Check(raw, u.ID, u.PasswordHash)
	if err != nil {
		return nil, nil
	}
	ok, err := s.Store.AttemptDeviceToken(ctx, id, u.ID, deviceTokenFailures, s.Clock.Now())
	if err != nil || !ok {
		return nil, err
	}
	return &deviceLogin{id: id, raw: raw}, nil
}

// deviceTokenFailed settles a wrong password through d, whose budget already counted it, and says
// which: counted, or ended when it used the budget up. Failing to mark the token dead is only
// logged, since its spent budget already refuses it.
func (s *Service) deviceTokenFailed(ctx context.Context, d *deviceLogin) string {
	ended, err := s.Store.FailDeviceToken(ctx, d.id, deviceTokenFailures, s.Clock.Now())
	if err != nil {
		s.Logger.WarnContext(ctx, "device token: marking a spent budget failed", "device_token_id", d.id, "err", err)
	}
	if ended {
		return deviceTokenEnded
	}
	return deviceTokenCounted
}

// deviceTokenFor returns the device token a successful password login hands back, inside the
// login's transaction: the one it came through, with its budget reset and its life extended, when
// that one is still alive and still matches the password (a rehash changes the hash it covers);
// else a new one.
func (s *Service) deviceTokenFor(ctx context.Context, tx fluxauth.Tx, u *fluxauth.User, d *deviceLogin, now time.Time) (string, error) {
	if d != nil {
		if _, err := s.Devices.Check(d.raw, u.ID, u.PasswordHash); err == nil {
			live, err := tx.ResetDeviceToken(ctx, d.id, now.Add(s.Config.DeviceTokenTTL))
			if err != nil || live {
				return d.raw, err
			}
		}
	}
	return s.issueDeviceToken(ctx, tx, u, now)
}

// issueDeviceToken makes a device token for u, bound to u's current password, inside tx. Every
// password sign-in calls it (signup, login, and password reset when it comes).
func (s *Service) issueDeviceToken(ctx context.Context, tx fluxauth.Tx, u *fluxauth.User, now time.Time) (string, error) {
	dt := &fluxauth.DeviceToken{ID: s.newID(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.Config.DeviceTokenTTL)}
	raw, err := s.Devices.Mint(dt.ID, u.ID, u.PasswordHash)
	if err != nil {
		return "", err
	}
	if err := tx.InsertDeviceToken(ctx, dt); err != nil {
		return "", err
	}
	return raw, nil
}

// revokeDeviceTokens ends every device token of the user for reason ("logout_all", "takeover"),
// inside tx, and returns how many it ended: from then on the user's devices log in like any other,
// counted on the lockout. A password change needs no call: it retires the tokens by itself, their
// HMAC covering the hash.
func (s *Service) revokeDeviceTokens(ctx context.Context, tx fluxauth.Tx, userID, reason string) (int, error) {
	return tx.RevokeDeviceTokens(ctx, userID, s.Clock.Now(), reason)
}

// withDeviceToken adds what a presented device token did to a login event's metadata.
func withDeviceToken(meta map[string]any, outcome string, d *deviceLogin) map[string]any {
	if outcome == "" {
		return meta
	}
	if meta == nil {
		meta = map[string]any{}
	}
	meta["deviceToken"] = outcome
	if d != nil {
		meta["deviceTokenId"] = d.id
	}
	return meta
}
