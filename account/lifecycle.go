package account

import (
	"context"
	"errors"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/emailaddr"
	"github.com/fluxstudio/fluxauth/password"
	"github.com/fluxstudio/fluxauth/token"
)

// The account lifecycle: a forgotten password reset through a mailed link, a password changed by its
// signed-in owner, an address proven through a mailed link. Requests only queue mails in the
// outbox (in the transaction that decides them); the mail sender mints each link's token as it
// sends, so a request never holds, logs or stores one.

var (
	errMailUnavailable = fluxauth.Errorf(fluxauth.EMailUnavailable, "Mail cannot be sent by this server.")
	errInvalidReset    = fluxauth.Errorf(fluxauth.EInvalidResetToken, "The reset link is invalid, expired or already used; ask for a new one.")
	errInvalidVerify   = fluxauth.Errorf(fluxauth.EInvalidVerificationToken, "The verification link is invalid, expired or already used; ask for a new one.")
	errNoPassword      = fluxauth.Errorf(fluxauth.ENoPassword, "This account has no password: set one through a password reset.")
	errWrongPassword   = fluxauth.Errorf(fluxauth.EInvalidCredentials, "The current password is incorrect.")
	errUnverifiedLogin = fluxauth.Errorf(fluxauth.EEmailNotVerified, "Confirm your email address with the link we sent before signing in.")
)

// queueMail puts a mail of kind for u (nil: an address no account has) in the outbox, inside tx.
// The caller notifies the sender once tx has committed.
func (s *Service) queueMail(ctx context.Context, tx fluxauth.Tx, kind string, u *fluxauth.User, address string, now time.Time) (*fluxauth.OutboxMail, error) {
	m := &fluxauth.OutboxMail{ID: s.newID(), Kind: kind, Address: address, NextAttemptAt: now, CreatedAt: now}
	if u != nil {
		m.UserID, m.Address = u.ID, u.Email
	}
	return m, tx.EnqueueMail(ctx, m)
}

// policyError is the password policy's verdict on pw, reported under field.
func policyError(v *fluxauth.ValidationError, field, pw string) {
	if err := password.CheckPolicy(pw); err != nil {
		var fe *fluxauth.Error
		if errors.As(err, &fe) && fe.Fields["password"] != "" {
			v.Add(field, fe.Fields["password"])
		} else {
			v.Add(field, "is not acceptable")
		}
	}
}

// ForgotPassword queues a password-reset mail for the account with email. Whether an account has
// the address or not, it does the same work (a lookup, one outbox row, one event) and answers the
// same, so it reveals nothing: the sender resolves a row without an account to no mail.
func (s *Service) ForgotPassword(ctx context.Context, email string, dev Device) error {
	email = NormalizeEmail(email)
	var v fluxauth.ValidationError
	if !ValidEmail(email) {
		v.Add("email", "must be a valid email address")
	}
	if err := v.Err(); err != nil {
		return err
	}
	if s.Mail == nil {
		return errMailUnavailable
	}
	dev = dev.normalized()
	// The per-IP limit first: once an address is over it, it can create no more per-email keys.
	if err := s.allow(ctx, dev, limit{"forgot:ip", s.Rules.ForgotIP, []string{ipKey(dev.IP)}},
		limit{"forgot:email", s.Rules.ForgotEmail, []string{emailaddr.Canonical(email)}}); err != nil {
		return err
	}
	u, err := s.Store.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, fluxauth.ErrNotFound) {
		return err
	}
	userID := ""
	if u != nil {
		userID = u.ID
	}
	now := s.Clock.Now()
	err = s.update(ctx, func(tx fluxauth.Tx) error {
		m, err := s.queueMail(ctx, tx, fluxauth.MailPasswordReset, u, email, now)
		if err != nil {
			return err
		}
		return tx.InsertEvents(ctx, s.event(fluxauth.EventPasswordResetRequested, fluxauth.SeverityInfo, userID, "", dev,
			map[string]any{"email": email, "mailId": m.ID}))
	})
	if err != nil {
		return err
	}
	s.Mail.Notify()
	return nil
}

// ResetInput is the body of POST /api/auth/password/reset.
type ResetInput struct {
	Token, Password string
	Device          Device
}

// linkTokenTries is how many tries a link token takes (AttemptLinkToken) before it is dead: a
// reset link whose new passwords were refused this often must be asked for again.
const linkTokenTries = 5

// ResetPassword spends a reset link's token and, in the same transaction, sets the new password,
// records the address proven (the link reached it), retires every other reset token, ends every
// device token and every session of the account (they were earned with the old password), and
// signs the user in on this device. The failed-login lockout is cleared: the owner has proven
// themselves.
//
// Nothing is hashed before the cheap checks: the per-IP limit, then one try taken from the token's
// budget (an unknown, spent or exhausted token ends there), then the policy. A try is counted
// before the password is judged, so concurrent refused tries never exceed linkTokenTries.
func (s *Service) ResetPassword(ctx context.Context, in ResetInput) (*Result, error) {
	var v fluxauth.ValidationError
	if in.Token == "" {
		v.Add("token", "is required")
	}
	if in.Password == "" {
		v.Add("password", "is required")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	dev := in.Device.normalized()
	if err := s.allow(ctx, dev, limit{"reset:ip", s.Rules.ResetIP, []string{ipKey(dev.IP)}}); err != nil {
		return nil, err
	}
	if len(in.Token) > token.MaxLinkTokenLen {
		return nil, errInvalidReset
	}
	if _, err := s.Store.AttemptLinkToken(ctx, token.HashLinkToken(in.Token), fluxauth.MailPasswordReset, linkTokenTries, s.Clock.Now()); errors.Is(err, fluxauth.ErrNotFound) {
		return nil, errInvalidReset
	} else if err != nil {
		return nil, err
	}
	policyError(&v, "password", in.Password)
	if err := v.Err(); err != nil {
		return nil, err
	}
	hash, err := s.Passwords.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	now := s.Clock.Now()
	var res *Result
	var ended []string
	err = s.update(ctx, func(tx fluxauth.Tx) error {
		lt, err := tx.UseLinkToken(ctx, token.HashLinkToken(in.Token), fluxauth.MailPasswordReset, now)
		if errors.Is(err, fluxauth.ErrNotFound) {
			return errInvalidReset
		} else if err != nil {
			return err
		}
		u, err := tx.LockUser(ctx, lt.UserID)
		if errors.Is(err, fluxauth.ErrNotFound) {
			return errInvalidReset
		} else if err != nil {
			return err
		}
		devices, err := s.setPassword(ctx, tx, u, hash, "password_reset", now)
		if err != nil {
			return err
		}
		if !u.EmailVerified() {
			if err := tx.SetEmailVerified(ctx, u.ID, now); err != nil {
				return err
			}
			u.EmailVerifiedAt = now
		}
		if ended, err = s.revokeAllIn(ctx, tx, u.ID, "", "password_reset", "user:"+u.ID, now, dev); err != nil {
			return err
		}
		meta := map[string]any{"method": "password_reset", "sessionsRevoked": len(ended), "deviceTokensRevoked": devices}
		if res, err = s.startSession(ctx, tx, u, dev, now, fluxauth.EventPasswordReset, meta); err != nil {
			return err
		}
		res.DeviceToken, err = s.issueDeviceToken(ctx, tx, u, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.announceRevoked(ctx, ended...)
	s.loginSucceeded(ctx, res.User.ID)
	return res, nil
}

// setPassword stores hash as u's password inside tx, whose transaction holds u's row, and ends what
// the old password had earned: the reset tokens not yet used (a password changes once per link) and
// the device tokens (their HMAC covers the hash already; their end must not rest on it alone). It
// returns how many device tokens it ended.
func (s *Service) setPassword(ctx context.Context, tx fluxauth.Tx, u *fluxauth.User, hash, reason string, now time.Time) (int, error) {
	if err := tx.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
		return 0, err
	}
	u.PasswordHash, u.UpdatedAt = hash, now
	if _, err := tx.RetireLinkTokens(ctx, u.ID, fluxauth.MailPasswordReset, nil, now); err != nil {
		return 0, err
	}
	return s.revokeDeviceTokens(ctx, tx, u.ID, reason)
}

// revokeAllIn ends, inside tx, every live session of the user but keep, each with its token_revoked,
// and returns them for announcing once tx has committed.
func (s *Service) revokeAllIn(ctx context.Context, tx fluxauth.Tx, userID, keep, reason, by string, now time.Time, dev Device) ([]string, error) {
	tips, err := tx.ActiveSessions(ctx, userID, now)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(tips))
	for _, t := range tips {
		if t.SessionID != keep {
			ids = append(ids, t.SessionID)
		}
	}
	return s.revokeSessionsIn(ctx, tx, userID, ids, now, reason, by, dev, false)
}

// ChangePasswordInput is the body of POST /api/auth/password.
type ChangePasswordInput struct {
	CurrentPassword, NewPassword string
	Device                       Device
}

// ChangePassword replaces the caller's password after checking the current one, which counts on the
// failed-login lockout like a login (a stolen access token must not buy unlimited guesses). Every
// other session of the caller ends, and every device token; the caller's session is kept. An account
// without a password (Google or Apple only) sets one through the reset flow instead.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, in ChangePasswordInput) error {
	var v fluxauth.ValidationError
	if in.CurrentPassword == "" {
		v.Add("currentPassword", "is required")
	}
	policyError(&v, "newPassword", in.NewPassword)
	if err := v.Err(); err != nil {
		return err
	}
	u, err := s.Me(ctx, p)
	if err != nil {
		return err
	}
	if u.PasswordHash == "" {
		return errNoPassword
	}
	dev := in.Device.normalized()
	if err := s.attemptLogin(ctx, u.Email, u.ID, dev, ""); err != nil {
		return err
	}
	ok, _, err := s.Passwords.Verify(ctx, u.PasswordHash, in.CurrentPassword)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) {
		return err
	}
	if !ok {
		if err := s.recordFailedLogin(ctx, u.ID, u.Email, "wrong_current_password", dev, "", nil); err != nil {
			return err
		}
		return errWrongPassword
	}
	hash, err := s.Passwords.Hash(ctx, in.NewPassword)
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	var ended []string
	err = s.update(ctx, func(tx fluxauth.Tx) error {
		cur, err := lockUnchangedPassword(ctx, tx, u)
		if err != nil {
			return err
		}
		devices, err := s.setPassword(ctx, tx, cur, hash, "password_changed", now)
		if err != nil {
			return err
		}
		if ended, err = s.revokeAllIn(ctx, tx, cur.ID, p.SessionID, "password_changed", "user:"+cur.ID, now, dev); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, s.event(fluxauth.EventPasswordChanged, fluxauth.SeverityInfo, cur.ID, "", dev,
			map[string]any{"sessionId": p.SessionID, "sessionsRevoked": len(ended), "deviceTokensRevoked": devices}))
	})
	if errors.Is(err, errPasswordChanged) {
		return errWrongPassword
	}
	if err != nil {
		return err
	}
	s.announceRevoked(ctx, ended...)
	s.loginSucceeded(ctx, u.ID)
	return nil
}

// VerifyInput is the body of POST /api/auth/email/verify with who presents it: the signed-in
// owner (Principal, from the Bearer token), or someone who proves it with the account's Email and
// Password (and the device's DeviceToken, as at login).
type VerifyInput struct {
	Token                        string
	Principal                    *Principal
	Email, Password, DeviceToken string
	Device                       Device
}

var errVerifySignIn = fluxauth.Errorf(fluxauth.EInvalidToken,
	"Sign in to confirm this address: send the account's access token, or its email and password.")

// VerifyEmail spends a verification link's token and records the account's address proven, for
// someone who can sign in to the account only: a link alone proves that the address received it,
// not that its owner made the account (an attacker who signed the address up would otherwise get
// it proven by the owner's click, and then linked to the owner's Google sign-in). The caller is the
// Principal, or the email and password, checked like a login (the same per-IP limits, lockout and
// device tokens) but after the token is looked up, so a bogus token costs no hash. Without either
// it answers 401 and changes nothing; a token of another account answers invalid_verification_token
// and stays unspent.
func (s *Service) VerifyEmail(ctx context.Context, in VerifyInput) (*fluxauth.User, error) {
	in.Email = NormalizeEmail(in.Email)
	var v fluxauth.ValidationError
	if in.Token == "" {
		v.Add("token", "is required")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if in.Principal == nil && (in.Email == "" || in.Password == "") {
		return nil, errVerifySignIn
	}
	dev := in.Device.normalized()
	if in.Principal == nil {
		if err := s.allowLogin(ctx, dev, in.Email); err != nil {
			return nil, err
		}
	}
	if len(in.Token) > token.MaxLinkTokenLen {
		return nil, errInvalidVerify
	}
	now := s.Clock.Now()
	// A lookup, not a try: the password's tries are the lockout's, and a Bearer needs none.
	lt, err := s.Store.LinkToken(ctx, token.HashLinkToken(in.Token), fluxauth.MailVerifyEmail, now)
	if errors.Is(err, fluxauth.ErrNotFound) {
		return nil, errInvalidVerify
	} else if err != nil {
		return nil, err
	}
	userID, method := "", "bearer"
	var dl *deviceLogin
	if in.Principal != nil {
		userID = in.Principal.UserID
	} else {
		a, err := s.checkPassword(ctx, LoginInput{Email: in.Email, Password: in.Password, DeviceToken: in.DeviceToken}, dev)
		if err != nil {
			return nil, err
		}
		userID, dl, method = a.u.ID, a.dl, "password"
		if dl == nil {
			s.loginSucceeded(ctx, userID)
		}
	}
	if lt.UserID != userID {
		return nil, errInvalidVerify
	}
	var u *fluxauth.User
	err = s.update(ctx, func(tx fluxauth.Tx) error {
		lt, err := tx.UseLinkToken(ctx, token.HashLinkToken(in.Token), fluxauth.MailVerifyEmail, now)
		if errors.Is(err, fluxauth.ErrNotFound) || (err == nil && lt.UserID != userID) {
			return errInvalidVerify
		} else if err != nil {
			return err
		}
		if u, err = tx.LockUser(ctx, lt.UserID); errors.Is(err, fluxauth.ErrNotFound) {
			return errInvalidVerify
		} else if err != nil {
			return err
		}
		if !u.EmailVerified() {
			if err := tx.SetEmailVerified(ctx, u.ID, now); err != nil {
				return err
			}
			u.EmailVerifiedAt, u.UpdatedAt = now, now
		}
		if _, err := tx.RetireLinkTokens(ctx, u.ID, fluxauth.MailVerifyEmail, nil, now); err != nil {
			return err
		}
		if dl != nil {
			if _, err := tx.ResetDeviceToken(ctx, dl.id, now.Add(s.Config.DeviceTokenTTL)); err != nil {
				return err
			}
		}
		return tx.InsertEvents(ctx, s.event(fluxauth.EventEmailVerified, fluxauth.SeverityInfo, u.ID, "", dev,
			map[string]any{"email": u.Email, "method": method}))
	})
	return u, err
}

// ResendVerification queues another verification mail for the caller, unless the address is proven
// already (then nothing is sent, and the answer is the same).
func (s *Service) ResendVerification(ctx context.Context, p *Principal, dev Device) error {
	if s.Mail == nil {
		return errMailUnavailable
	}
	dev = dev.normalized()
	if err := s.allow(ctx, dev, limit{"verify-resend:user", s.Rules.VerifyResend, []string{p.UserID}}); err != nil {
		return err
	}
	u, err := s.Me(ctx, p)
	if err != nil || u.EmailVerified() {
		return err
	}
	if err := s.update(ctx, func(tx fluxauth.Tx) error {
		_, err := s.queueMail(ctx, tx, fluxauth.MailVerifyEmail, u, u.Email, s.Clock.Now())
		return err
	}); err != nil {
		return err
	}
	s.Mail.Notify()
	return nil
}
