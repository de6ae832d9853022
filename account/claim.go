package account

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/emailaddr"
	"github.com/fluxstudio/fluxauth/oidc"
)

// provesEmail reports whether the provider's claims prove, for the first time, that the signer owns
// u's address: the provider vouches for the address and is its authority (authoritative), it is
// u's (in canonical form), and nobody has proven it before.
func provesEmail(provider string, c *oidc.Claims, u *fluxauth.User) bool {
	return authoritative(provider, c) && !u.EmailVerified() &&
		emailaddr.Canonical(NormalizeEmail(c.Email)) == emailaddr.Canonical(u.Email)
}

// claim hands the account u, whose row tx holds, to the signer of identity, who has just proven they
// own its address (provesEmail). Anyone could have registered the address before (with a password,
// or a provider account that did not verify it), and may still hold a way in: so, as Firebase does
// for its trusted providers, every other credential is removed (tx.ClaimUser: the password, the
// identities whose email was never verified; revokeDeviceTokens: the device tokens), and, if there
// was any, every session of the account is ended, with token_revoked for each and one
// account_claimed saying why. The owner can set a password later. An honest password user whose
// address was never proven loses their password on their first Google or Apple sign-in: intended,
// and said in docs/api.md#accounts-linking-and-takeover.
//
// u is updated to what was written. claim returns the sessions it ended, to be announced once the
// transaction has committed.
func (s *Service) claim(ctx context.Context, tx fluxauth.Tx, u *fluxauth.User, identity *fluxauth.Identity, now time.Time, dev Device) ([]string, error) {
	removed, err := tx.ClaimUser(ctx, u.ID, identity.Provider, identity.Subject, now)
	if err != nil {
		return nil, err
	}
	u.EmailVerifiedAt, u.UpdatedAt = now, now
	if removed.Password {
		u.PasswordHash = ""
		// A reset link sets a password: none issued for the removed one may.
		if _, err := tx.RetireLinkTokens(ctx, u.ID, fluxauth.MailPasswordReset, nil, now); err != nil {
			return nil, err
		}
	}
	// Device tokens are credentials too: each exempts its holder from the account's lockout. Those
	// minted over the removed password no longer verify, but their end must not rest on the hash
	// alone, so every one of them ends here, whoever held it.
	devices, err := s.revokeDeviceTokens(ctx, tx, u.ID, "takeover")
	if err != nil {
		return nil, err
	}
	if !removed.Any() {
		// Only the claimant ever held the account (a provider-only account made before verification
		// was recorded): its sessions are the claimant's own.
		return nil, nil
	}
	tips, err := tx.ActiveSessions(ctx, u.ID, now)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(tips))
	for _, t := range tips {
		ids = append(ids, t.SessionID)
	}
	ended, err := s.revokeSessionsIn(ctx, tx, u.ID, ids, now, "account_claimed", "provider:"+identity.Provider, dev, false)
	if err != nil {
		return nil, err
	}
	return ended, tx.InsertEvents(ctx, s.event(fluxauth.EventAccountClaimed, fluxauth.SeverityWarning, u.ID, "", dev, map[string]any{
		"provider": identity.Provider, "passwordRemoved": removed.Password, "identitiesRemoved": removed.Identities,
		"sessionsRevoked": len(ended), "deviceTokensRevoked": devices,
	}))
}
