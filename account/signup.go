package account

import (
	"context"
	"errors"
	"net/mail"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/fluxstudio/fluxauth"
)

// SignupInput is the body of POST /api/auth/signup.
type SignupInput struct {
	Email, Password, Name, UserType string
	Device                          Device
}

// MaxNameLen is the longest name, in characters.
const MaxNameLen = 100

// NormalizeEmail trims the address; case is kept as typed but never matters for lookups.
func NormalizeEmail(s string) string { return strings.TrimSpace(s) }

// ValidEmail reports whether email, trimmed (NormalizeEmail), is an address signup accepts: one
// plain address of at most 254 bytes whose domain has a dot.
func ValidEmail(email string) bool {
	if len(email) > 254 || strings.ContainsAny(email, " \t\r\n<>\"") {
		return false
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email {
		return false
	}
	at := strings.LastIndexByte(email, '@')
	return at > 0 && strings.Contains(email[at+1:], ".") && !strings.HasSuffix(email, ".")
}

// Signup creates an account and its first session.
func (s *Service) Signup(ctx context.Context, in SignupInput) (*Result, error) {
	in.Email = NormalizeEmail(in.Email)
	in.Name = strings.TrimSpace(in.Name)
	in.UserType = strings.TrimSpace(in.UserType)
	if in.UserType == "" {
		in.UserType = fluxauth.UserTypeClient
	}
	var v fluxauth.ValidationError
	if !ValidEmail(in.Email) {
		v.Add("email", "must be a valid email address")
	}
	policyError(&v, "password", in.Password)
	if in.Name == "" {
		v.Add("name", "is required")
	} else if utf8.RuneCountInString(in.Name) > MaxNameLen {
		v.Add("name", "must be at most 100 characters")
	}
	if in.UserType == fluxauth.UserTypeAdmin || !slices.Contains(s.Config.SignupUserTypes, in.UserType) {
		v.Add("userType", "must be one of: "+strings.Join(s.Config.SignupUserTypes, ", "))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.allow(ctx, in.Device, limit{"signup:ip", s.Rules.Signup, []string{ipKey(in.Device.IP)}}); err != nil {
		return nil, err
	}
	hash, err := s.Passwords.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	now := s.Clock.Now()
	u := &fluxauth.User{
		ID: s.newID(), Email: in.Email, Name: in.Name, UserType: in.UserType,
		PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
	}
	dev := in.Device.normalized()
	var res *Result
	err = s.update(ctx, func(tx fluxauth.Tx) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			if errors.Is(err, fluxauth.ErrConflict) {
				return fluxauth.Errorf(fluxauth.EEmailTaken, "An account with this email already exists.")
			}
			return err
		}
		var err error
		if res, err = s.startSession(ctx, tx, u, dev, now, fluxauth.EventSignup, nil); err != nil {
			return err
		}
		if res.DeviceToken, err = s.issueDeviceToken(ctx, tx, u, now); err != nil {
			return err
		}
		if s.Mail != nil {
			_, err = s.queueMail(ctx, tx, fluxauth.MailVerifyEmail, u, u.Email, now)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.Mail != nil {
		s.Mail.Notify()
	}
	res.Created = true
	return res, nil
}
