package account_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// TestRequireAdminReadsTheAccountNotTheToken pins the admin rule: whether the caller is an admin is
// the account's user_type as stored now, whatever the access token says.
func TestRequireAdminReadsTheAccountNotTheToken(t *testing.T) {
	ctx := context.Background()
	r := newRigOn(t, sqlitetest.MustOpenDB(t))
	res := r.signup("boss@example.com")
	setType := func(userType string) {
		t.Helper()
		if err := r.store.SetUserType(ctx, "boss@example.com", userType, r.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	caller := func() *account.Principal {
		t.Helper()
		p, err := r.svc.Authenticate(ctx, "Bearer "+res.AccessToken, device)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	wantCode := func(what string, err error, code string) {
		t.Helper()
		if got := fluxauth.ErrorCode(err); (code == "" && err != nil) || (code != "" && got != code) {
			t.Fatalf("%s: RequireAdmin = %v, want %q", what, err, code)
		}
	}

	wantCode("a client", r.svc.RequireAdmin(ctx, caller()), fluxauth.EForbidden)
	// A token minted before the promotion says "client"; the promotion counts at once.
	setType(fluxauth.UserTypeAdmin)
	wantCode("a promoted client", r.svc.RequireAdmin(ctx, caller()), "")
	// A token minted while an admin still says so; the demotion counts at once.
	admin := &account.Principal{UserID: res.User.ID, SessionID: res.SessionID, Email: res.User.Email, UserType: fluxauth.UserTypeAdmin}
	setType(fluxauth.UserTypeClient)
	wantCode("a demoted admin", r.svc.RequireAdmin(ctx, admin), fluxauth.EForbidden)
	wantCode("an account that does not exist", r.svc.RequireAdmin(ctx, &account.Principal{UserID: uuid.NewString(), UserType: fluxauth.UserTypeAdmin}), fluxauth.EInvalidToken)
}
