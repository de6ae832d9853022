package account

import (
	"context"
	"errors"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/emailaddr"
	"github.com/fluxstudio/fluxauth/oidc"
)

// LinkedIdentity is what LinkIdentity answers: the identity, and whether this call linked it (false:
// it was linked to the caller's account already, and nothing changed).
type LinkedIdentity struct {
	Identity *fluxauth.Identity
	Created  bool
}

// LinkIdentity links the identity of a verified ID token to the signed-in caller's account. The
// caller proves they can sign in to the account (the Bearer token) and hold the provider account
// (the ID token), so no address has to match: the identity may carry any address. The identity
// vouches for the account's address (Identity.EmailVerified) only when the provider is that
// address's authority, so a link made by whoever pre-registered an address is removed when its
// owner takes the account over. The ID token is spent like a sign-in's. An identity linked to
// another account is identity_in_use; another identity of the provider on this account is
// provider_already_linked. Every new link records identity_linked and mails the owner a notice.
func (s *Service) LinkIdentity(ctx context.Context, p *Principal, in IDTokenInput) (*LinkedIdentity, error) {
	dev := in.Device.normalized()
	c, err := s.verifyIDToken(ctx, in, dev)
	if err != nil {
		return nil, err
	}
	use := &fluxauth.IDTokenUse{Provider: in.Provider, Key: c.ReplayKey, UsedAt: s.Clock.Now(), ExpiresAt: c.Expiry}
	now := s.Clock.Now()
	var out LinkedIdentity
	err = s.update(ctx, func(tx fluxauth.Tx) error {
		if err := spendIDToken(ctx, tx, use); err != nil {
			return err
		}
		u, err := tx.LockUser(ctx, p.UserID)
		if err != nil {
			return err
		}
		switch cur, err := tx.IdentityBySubject(ctx, in.Provider, c.Subject); {
		case err == nil && cur.UserID == u.ID:
			out = LinkedIdentity{Identity: cur}
			return nil
		case err == nil:
			return errIdentityInUse
		case !errors.Is(err, fluxauth.ErrNotFound):
			return err
		}
		ids, err := tx.IdentitiesOf(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if id.Provider == in.Provider {
				return fluxauth.Errorf(fluxauth.EProviderAlreadyLinked,
					"Another %s account is linked to this account already; unlink it first.", providerTitle(in.Provider))
			}
		}
		email := NormalizeEmail(c.Email)
		identity := &fluxauth.Identity{Provider: in.Provider, Subject: c.Subject, UserID: u.ID, Email: email, CreatedAt: now,
			EmailVerified: authoritative(in.Provider, c) && sameAddress(email, u.Email)}
		if err := s.linkIdentity(ctx, tx, u, identity, "owner", dev); err != nil {
			return err
		}
		out = LinkedIdentity{Identity: identity, Created: true}
		return nil
	})
	switch {
	case errors.Is(err, errIDTokenUsed):
		return nil, &fluxauth.Error{Code: fluxauth.EInvalidIDToken, Message: "The ID token has been used already; sign in with the provider again.", Err: err}
	case errors.Is(err, fluxauth.ErrConflict):
		// Another account's link of the identity committed first.
		return nil, errIdentityInUse
	case err != nil:
		return nil, err
	}
	if out.Created {
		s.notifyMail()
	}
	return &out, nil
}

var errIdentityInUse = fluxauth.Errorf(fluxauth.EIdentityInUse, "This provider account is linked to another account.")

// UnlinkIdentity removes the caller's identities of provider. It refuses (last_sign_in_method) when
// they are the account's only way to sign in: no password and no identity of another provider.
func (s *Service) UnlinkIdentity(ctx context.Context, p *Principal, provider string, dev Device) error {
	if provider != oidc.Google && provider != oidc.Apple {
		return fluxauth.Errorf(fluxauth.ENotFound, "No such provider.")
	}
	dev = dev.normalized()
	return s.update(ctx, func(tx fluxauth.Tx) error {
		u, err := tx.LockUser(ctx, p.UserID)
		if err != nil {
			return err
		}
		ids, err := tx.IdentitiesOf(ctx, u.ID)
		if err != nil {
			return err
		}
		mine, others := 0, 0
		for _, id := range ids {
			if id.Provider == provider {
				mine++
			} else {
				others++
			}
		}
		if mine == 0 {
			return fluxauth.Errorf(fluxauth.ENotFound, "No %s account is linked to this account.", providerTitle(provider))
		}
		if u.PasswordHash == "" && others == 0 {
			return fluxauth.Errorf(fluxauth.ELastSignInMethod,
				"%s is the only way to sign in to this account: set a password or link another provider first.", providerTitle(provider))
		}
		n, err := tx.DeleteIdentities(ctx, u.ID, provider)
		if err != nil {
			return err
		}
		return tx.InsertEvents(ctx, s.event(fluxauth.EventIdentityUnlinked, fluxauth.SeverityInfo, u.ID, "", dev,
			map[string]any{"provider": provider, "identitiesRemoved": n}))
	})
}

// linkIdentity inserts identity for u (whose row tx holds), records identity_linked and queues the
// notice to the account's owner (when mail can be sent; the caller notifies the sender after the
// commit).
func (s *Service) linkIdentity(ctx context.Context, tx fluxauth.Tx, u *fluxauth.User, identity *fluxauth.Identity, by string, dev Device) error {
	if err := tx.CreateIdentity(ctx, identity); err != nil {
		return err
	}
	if err := tx.InsertEvents(ctx, s.event(fluxauth.EventIdentityLinked, fluxauth.SeverityWarning, u.ID, "", dev,
		map[string]any{"provider": identity.Provider, "by": by, "identityEmail": identity.Email})); err != nil {
		return err
	}
	if kind := fluxauth.MailIdentityLinked(identity.Provider); s.Mail != nil && kind != "" {
		if _, err := s.queueMail(ctx, tx, kind, u, u.Email, s.Clock.Now()); err != nil {
			return err
		}
	}
	return nil
}

// notifyMail wakes the sender, when there is one.
func (s *Service) notifyMail() {
	if s.Mail != nil {
		s.Mail.Notify()
	}
}

func sameAddress(a, b string) bool {
	return emailaddr.Canonical(NormalizeEmail(a)) == emailaddr.Canonical(NormalizeEmail(b))
}
