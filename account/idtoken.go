package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/oidc"
)

// IDTokenInput is a sign-in with an ID token that an app obtained from Google's or Apple's SDK.
type IDTokenInput struct {
	Provider string // oidc.Google or oidc.Apple
	IDToken  string
	Nonce    string // the raw nonce the app sent to the provider, when it used one
	Name     string // Apple sends the user's name only to the app, on the first sign-in
	Device   Device
}

// SignInWithIDToken verifies the ID token and signs its owner in, creating the account on first
// sign-in. An identity is linked to an existing account with the same email only when the provider
// vouches that the email is verified; otherwise nothing changes and account_exists is returned, so
// nobody can take over an account by registering its address with a provider. A verified sign-in
// into an account whose address was never proven takes the account over (claim); an account is
// created only for an address the provider vouches for (else email_not_verified).
//
// Each ID token signs in once: its use is recorded in the transaction that starts the session, so
// a token is spent exactly when a session was opened with it. A second presentation, on any
// instance, is invalid_id_token (failed_login with reason and detail "replayed"); one racing the first waits
// for it and is refused if it committed. A sign-in that fails (the database, account_exists) leaves
// the token unspent, which lets the client retry it, and lets nobody open a session it did not.
func (s *Service) SignInWithIDToken(ctx context.Context, in IDTokenInput) (*Result, error) {
	dev := in.Device.normalized()
	claims, err := s.verifyIDToken(ctx, in, dev)
	if err != nil {
		return nil, err
	}
	use := &fluxauth.IDTokenUse{Provider: in.Provider, Key: claims.ReplayKey, UsedAt: s.Clock.Now(), ExpiresAt: claims.Expiry}
	// A concurrent first sign-in of the same subject or email may win the insert; the second pass
	// then finds what it created.
	for attempt := 0; ; attempt++ {
		res, err := s.signInIdentity(ctx, in, claims, use, dev)
		if errors.Is(err, fluxauth.ErrConflict) && attempt < 2 {
			continue
		}
		if errors.Is(err, errIDTokenUsed) {
			if rerr := s.record(ctx, &fluxauth.SecurityEvent{
				Type: fluxauth.EventFailedLogin, Severity: fluxauth.SeverityWarning,
				Metadata: map[string]any{"reason": ReasonReplayed, "provider": in.Provider, "detail": ReasonReplayed},
			}, dev); rerr != nil {
				return nil, rerr
			}
			return nil, &fluxauth.Error{Code: fluxauth.EInvalidIDToken, Message: "The ID token has been used already; sign in with the provider again.", Err: err}
		}
		return res, err
	}
}

// verifyIDToken checks that in's provider is enabled, counts the attempt on the per-IP limit and
// verifies the ID token; a token that fails verification records failed_login (reason
// invalid_id_token, the detail oidc.Reason gives).
func (s *Service) verifyIDToken(ctx context.Context, in IDTokenInput, dev Device) (*oidc.Claims, error) {
	v := s.Providers[in.Provider]
	if v == nil || !v.Enabled() {
		return nil, fluxauth.Errorf(fluxauth.EProviderDisabled, "Sign-in with %s is not enabled.", providerTitle(in.Provider))
	}
	if err := s.allow(ctx, dev, limit{"idtoken:ip", s.Rules.IDTokenIP, []string{ipKey(dev.IP)}}); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.IDToken) == "" {
		var ve fluxauth.ValidationError
		ve.Add("idToken", "is required")
		return nil, ve.Err()
	}
	claims, err := v.Verify(ctx, in.IDToken, in.Nonce)
	if err != nil {
		if fluxauth.ErrorCode(err) == fluxauth.EInvalidIDToken {
			if rerr := s.record(ctx, &fluxauth.SecurityEvent{
				Type: fluxauth.EventFailedLogin, Severity: fluxauth.SeverityWarning,
				Metadata: map[string]any{"reason": "invalid_id_token", "provider": in.Provider, "detail": oidc.Reason(err)},
			}, dev); rerr != nil {
				return nil, rerr
			}
		}
		return nil, err
	}
	return claims, nil
}

// ReasonReplayed is the detail of the failed_login event of an ID token presented again after it
// signed in, beside the reasons oidc.Reason gives for tokens that fail verification.
const ReasonReplayed = "replayed"

// errIDTokenUsed rolls back a sign-in whose ID token is already spent.
var errIDTokenUsed = errors.New("the ID token has been used already")

// spendIDToken records the token's use, first thing in a sign-in's transaction: a sign-in racing
// with another of the same token waits here, before taking any other lock.
func spendIDToken(ctx context.Context, tx fluxauth.Tx, use *fluxauth.IDTokenUse) error {
	ok, err := tx.UseIDToken(ctx, use)
	if err == nil && !ok {
		err = errIDTokenUsed
	}
	return err
}

func (s *Service) signInIdentity(ctx context.Context, in IDTokenInput, c *oidc.Claims, use *fluxauth.IDTokenUse, dev Device) (*Result, error) {
	meta := map[string]any{"method": in.Provider}
	id, err := s.Store.IdentityBySubject(ctx, in.Provider, c.Subject)
	switch {
	case err == nil:
		return s.enterAccount(ctx, id, false, c, use, dev, meta)
	case !errors.Is(err, fluxauth.ErrNotFound):
		return nil, err
	}
	email := NormalizeEmail(c.Email)
	if email == "" {
		return nil, fluxauth.Errorf(fluxauth.EInvalidIDToken, "The ID token carries no email address.")
	}
	now := s.Clock.Now()
	identity := &fluxauth.Identity{Provider: in.Provider, Subject: c.Subject, Email: email, CreatedAt: now}
	existing, err := s.Store.UserByEmail(ctx, email)
	switch {
	case err == nil:
		// Only the address's authority may link into (or take over) an account by its address: any
		// other provider's email_verified would let whoever registered the address there in.
		if !authoritative(in.Provider, c) {
			return nil, fluxauth.Errorf(fluxauth.EAccountExists,
				"An account with this email already exists; sign in to it and link %s from there.", providerTitle(in.Provider))
		}
		identity.UserID, identity.EmailVerified = existing.ID, true
		return s.enterAccount(ctx, identity, true, c, use, dev, withLinked(meta))
	case !errors.Is(err, fluxauth.ErrNotFound):
		return nil, err
	}
	if !c.EmailVerified {
		// An address the provider does not vouch for is not the signer's to claim: an account made
		// with it would hold it against its owner, whose signup would then be refused.
		if err := s.record(ctx, &fluxauth.SecurityEvent{
			Type: fluxauth.EventFailedLogin, Severity: fluxauth.SeverityWarning,
			Metadata: map[string]any{"reason": "email_not_verified", "provider": in.Provider, "email": email},
		}, dev); err != nil {
			return nil, err
		}
		return nil, fluxauth.Errorf(fluxauth.EEmailNotVerified,
			"%s has not verified this email address; verify it there, or sign up with a password.", providerTitle(in.Provider))
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		name = strings.TrimSpace(c.Name)
	}
	if name == "" {
		name = email[:strings.IndexByte(email+"@", '@')]
	}
	// A provider that is not the address's authority proves nothing: the account starts with its
	// address unproven (and so can be taken over by the address's owner), and is sent the usual
	// verification mail.
	proven := authoritative(in.Provider, c)
	u := &fluxauth.User{ID: s.newID(), Email: email, Name: clip(name, 100), UserType: fluxauth.UserTypeClient,
		CreatedAt: now, UpdatedAt: now}
	if proven {
		u.EmailVerifiedAt = now
	}
	identity.UserID, identity.EmailVerified = u.ID, proven
	mailed := !proven && s.Mail != nil
	var res *Result
	err = s.update(ctx, func(tx fluxauth.Tx) error {
		if err := spendIDToken(ctx, tx, use); err != nil {
			return err
		}
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.CreateIdentity(ctx, identity); err != nil {
			return err
		}
		if mailed {
			if _, err := s.queueMail(ctx, tx, fluxauth.MailVerifyEmail, u, u.Email, now); err != nil {
				return err
			}
		}
		var err error
		res, err = s.startSession(ctx, tx, u, dev, now, fluxauth.EventSignup, meta)
		return err
	})
	if err != nil {
		return nil, err
	}
	if mailed {
		s.Mail.Notify()
	}
	res.Created = true
	return res, nil
}

// enterAccount signs the owner of identity into its account: it links identity first when link is
// set, and claims the account when this sign-in is the first to prove its address (provesEmail,
// claim). One transaction holds the account's row throughout, so a claim and another sign-in of
// the account run one after the other: a sign-in through an identity that a claim removed meanwhile
// finds it gone and starts over (as a sign-in whose insert lost a race does), and a claim ends every
// session that was opened before it.
func (s *Service) enterAccount(ctx context.Context, identity *fluxauth.Identity, link bool, c *oidc.Claims, use *fluxauth.IDTokenUse, dev Device, meta map[string]any) (*Result, error) {
	now := s.Clock.Now()
	var res *Result
	var ended []string
	err := s.update(ctx, func(tx fluxauth.Tx) error {
		if err := spendIDToken(ctx, tx, use); err != nil {
			return err
		}
		u, err := tx.LockUser(ctx, identity.UserID)
		if err != nil {
			return err
		}
		if link {
			if err := s.linkIdentity(ctx, tx, u, identity, "sign_in", dev); err != nil {
				return err
			}
		} else if cur, err := tx.IdentityBySubject(ctx, identity.Provider, identity.Subject); errors.Is(err, fluxauth.ErrNotFound) || (err == nil && cur.UserID != u.ID) {
			return fmt.Errorf("%w: the identity was removed while signing in", fluxauth.ErrConflict)
		} else if err != nil {
			return err
		}
		ended = nil
		if provesEmail(identity.Provider, c, u) {
			if ended, err = s.claim(ctx, tx, u, identity, now, dev); err != nil {
				return err
			}
		}
		res, err = s.startSession(ctx, tx, u, dev, now, fluxauth.EventLoginSuccess, meta)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.announceRevoked(ctx, ended...)
	if link {
		s.notifyMail()
	}
	return res, nil
}

func withLinked(meta map[string]any) map[string]any {
	m := map[string]any{"linked": true}
	for k, v := range meta {
		m[k] = v
	}
	return m
}

func providerTitle(p string) string {
	switch p {
	case oidc.Google:
		return "Google"
	case oidc.Apple:
		return "Apple"
	}
	return p
}
