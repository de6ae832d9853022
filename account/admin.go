package account

import (
	"context"
	"errors"

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

// AdminRevokeUserSessions ends every live session of the user userID on behalf of admin, who must
// have passed RequireAdmin. The audit log names the admin. A user that does not exist (or an ID
// that is not a user ID at all) is not_found, so an admin is told when they mistyped.
func (s *Service) AdminRevokeUserSessions(ctx context.Context, admin *Principal, userID string, dev Device) error {
	if _, err := uuid.Parse(userID); err != nil {
		return errNoSuchUser
	}
	if _, err := s.Store.UserByID(ctx, userID); errors.Is(err, fluxauth.ErrNotFound) {
		return errNoSuchUser
	} else if err != nil {
		return err
	}
	return s.RevokeUserSessions(ctx, userID, "admin_revoked", "admin:"+admin.UserID, dev)
}
