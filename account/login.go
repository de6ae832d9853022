package account

import (
	"context"
	"errors"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/emailaddr"
	"github.com/fluxstudio/fluxauth/password"
)

// LoginInput is the body of POST /api/auth/login.
type LoginInput struct {
	Email, Password string
	// DeviceToken is the token an earlier password sign-in of this device returned, if any: with
	// it, the login is counted on the token's budget instead of the account's lockout.
	DeviceToken string
	Device      Device
}

var errInvalidCredentials = fluxauth.Errorf(fluxauth.EInvalidCredentials, "The email or password is incorrect.")

// Login checks a password and starts a session. An unknown email gets the same answer as a wrong
// password, no sooner (see checkPassword), so responses do not reveal which accounts exist. A
// login with a live device token of the account is counted on the token's budget, not the account's
// lockout (see devicetoken.go).
func (s *Service) Login(ctx context.Context, in LoginInput) (*Result, error) {
	in.Email = NormalizeEmail(in.Email)
	var v fluxauth.ValidationError
	if in.Email == "" {
		v.Add("email", "is required")
	}
	if in.Password == "" {
		v.Add("password", "is required")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	dev := in.Device.normalized()
	if err := s.allowLogin(ctx, dev, in.Email); err != nil {
		return nil, err
	}
	a, err := s.checkPassword(ctx, in, dev)
	if err != nil {
		return nil, err
	}
	u, dl, deviceNote := a.u, a.dl, a.deviceNote
	if s.Config.RequireVerifiedEmail && !u.EmailVerified() {
		// The right password: the 403 tells nothing to someone without it, and the owner's tries
		// do not lock them out.
		if err := s.recordFailedLogin(ctx, u.ID, in.Email, "email_not_verified", dev, deviceNote, dl); err != nil {
			return nil, err
		}
		if dl == nil {
			s.loginSucceeded(ctx, u.ID)
		}
		return nil, errUnverifiedLogin
	}
	newHash := ""
	if a.rehash {
		newHash = s.rehash(ctx, u, in.Password)
	}
	if dl != nil {
		deviceNote = deviceTokenUsed
	}
	meta := withDeviceToken(map[string]any{"method": "password"}, deviceNote, dl)
	res, err := s.passwordSession(ctx, u, newHash, dev, dl, meta)
	if errors.Is(err, errPasswordChanged) {
		// The password checked is no longer the account's: a failure, counted where the attempt was.
		if dl != nil {
			deviceNote = s.deviceTokenFailed(ctx, dl)
		}
		if err := s.recordFailedLogin(ctx, u.ID, in.Email, "password_changed", dev, deviceNote, dl); err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials
	}
	if err != nil {
		return nil, err
	}
	// A success through a device token leaves the account's lockout as it is: the owner signing in
	// must not hand whoever is guessing a fresh set of tries.
	if dl == nil {
		s.loginSucceeded(ctx, u.ID)
	}
	return res, nil
}

// rehash hashes a password whose stored hash is legacy or outdated with the current parameters,
// for passwordSession to store. Failing it must not fail the login: the old hash still works, and
// "" keeps it.
func (s *Service) rehash(ctx context.Context, u *fluxauth.User, pw string) string {
	hash, err := s.Passwords.Hash(ctx, pw)
	if err != nil {
		s.Logger.WarnContext(ctx, "password rehash failed", "user_id", u.ID, "err", err)
		return ""
	}
	return hash
}

// recordFailedLogin records failed_login; deviceNote and dl say what a presented device token did.
func (s *Service) recordFailedLogin(ctx context.Context, userID, email, reason string, dev Device, deviceNote string, dl *deviceLogin) error {
	return s.record(ctx, &fluxauth.SecurityEvent{
		Type: fluxauth.EventFailedLogin, Severity: fluxauth.SeverityWarning, UserID: userID,
		Metadata: withDeviceToken(map[string]any{"reason": reason, "email": email}, deviceNote, dl),
	}, dev)
}

// allowLogin holds a password try for email to the login's per-IP limits. The per-IP limit comes
// first: once an address is over it, it can create no more per-email keys.
func (s *Service) allowLogin(ctx context.Context, dev Device, email string) error {
	return s.allow(ctx, dev, limit{"login:ip", s.Rules.LoginIP, []string{ipKey(dev.IP)}},
		limit{"login:ipemail", s.Rules.LoginIPEmail, []string{dev.IP, emailaddr.Canonical(email)}})
}

// passwordTry is a password that checkPassword found right: the account, the device token the try
// was counted on (nil: the account's lockout), what a presented device token did, and whether the
// stored hash wants renewing.
type passwordTry struct {
	u          *fluxauth.User
	dl         *deviceLogin
	deviceNote string
	rehash     bool
}

// checkPassword checks in's email and password as a login does, after allowLogin: the try is taken
// from the device token's budget or the account's lockout before the password is hashed, and a wrong
// password is a failed_login answering invalid_credentials. Once it gets to the password (unknown
// email, account without password, wrong or right password) it returns no sooner than the
// Passwords' Pad allows, counted from its start: an unknown email computes no hash, yet answers as
// late as the slowest stored hash would. A try refused before (lockout, device token) is not padded:
// those answer fast whatever the account.
func (s *Service) checkPassword(ctx context.Context, in LoginInput, dev Device) (try *passwordTry, err error) {
	start := time.Now() // wall clock, as Pad's: what an attacker measures (not s.Clock, which tests move)
	padded := false
	defer func() {
		if padded {
			if perr := s.Passwords.Pad(ctx, start); perr != nil && err == nil {
				try, err = nil, perr
			}
		}
	}()
	u, err := s.Store.UserByEmail(ctx, in.Email)
	if err != nil && !errors.Is(err, fluxauth.ErrNotFound) {
		return nil, err
	}
	userID := ""
	if u != nil {
		userID = u.ID
	}
	dl, err := s.attemptDeviceToken(ctx, in.DeviceToken, u)
	if err != nil {
		return nil, err
	}
	deviceNote := ""
	if in.DeviceToken != "" {
		deviceNote = deviceTokenIgnored
	}
	if dl == nil {
		if err := s.attemptLogin(ctx, in.Email, userID, dev, deviceNote); err != nil {
			return nil, err
		}
	}
	padded = true
	if u == nil || u.PasswordHash == "" {
		reason := "unknown_email"
		if u != nil {
			reason = "no_password"
		}
		if err := s.recordFailedLogin(ctx, userID, in.Email, reason, dev, deviceNote, nil); err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials
	}
	ok, rehash, err := s.Passwords.Verify(ctx, u.PasswordHash, in.Password)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) {
		return nil, err
	}
	if !ok {
		if dl != nil {
			deviceNote = s.deviceTokenFailed(ctx, dl)
		}
		if err := s.recordFailedLogin(ctx, u.ID, in.Email, "wrong_password", dev, deviceNote, dl); err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials
	}
	return &passwordTry{u: u, dl: dl, deviceNote: deviceNote, rehash: rehash}, nil
}
