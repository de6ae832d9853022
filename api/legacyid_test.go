package api_test

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fluxstudio/fluxauth"
)

// legacyUser stores an account as the legacy server's users come in: its own string ID and a bcrypt
// hash of the tests' password.
func (e *env) legacyUser(tb testing.TB, id, email, userType string) {
	tb.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	now := e.Clock.Now()
	if err := e.Store.CreateUser(context.Background(), &fluxauth.User{ID: id, Email: email, Name: "Legacy " + id,
		UserType: userType, PasswordHash: string(hash), CreatedAt: now, UpdatedAt: now}); err != nil {
		tb.Fatal(err)
	}
}

// An account whose ID is not a UUID ("123", as the legacy server's are) signs in, is its token's sub
// and user.id everywhere, refreshes, lists and ends its sessions, and is found and managed by an
// admin whose own ID is a legacy one too, in the admin API's paths as given.
func TestAnAccountWithALegacyIDSignsInRefreshesAndIsAdministered(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		{
			e.legacyUser(t, "123", "legacy@example.com", fluxauth.UserTypeClient)
			e.legacyUser(t, "usr_9f2", "legacy-admin@example.com", fluxauth.UserTypeAdmin)

			res := e.login(t, "legacy@example.com")
			wantStatus(t, "login", res, 200)
			var ar authResponse
			res.json(t, &ar)
			if ar.User.ID != "123" || claimsOf(t, ar.AccessToken).Sub != "123" {
				t.Fatalf("login: user.id %q, sub %q; want the imported ID 123", ar.User.ID, claimsOf(t, ar.AccessToken).Sub)
			}
			me := e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...)
			wantStatus(t, "me", me, 200)
			var body struct {
				User struct {
					ID string `json:"id"`
				} `json:"user"`
			}
			me.json(t, &body)
			if body.User.ID != "123" {
				t.Fatalf("me: user.id %q", body.User.ID)
			}
			next := e.mustRefresh(t, ar.RefreshToken)
			if next.User.ID != "123" || claimsOf(t, next.AccessToken).Sub != "123" {
				t.Fatalf("refresh: user.id %q, sub %q", next.User.ID, claimsOf(t, next.AccessToken).Sub)
			}
			if got := e.sessions(t, next.AccessToken); len(got) != 1 || !got[0].Current {
				t.Fatalf("sessions: %+v", got)
			}
			// The bcrypt hash became argon2id at this first login, as for any legacy hash.
			u, err := e.Store.UserByID(context.Background(), "123")
			if err != nil || u.PasswordHash[:9] != "$argon2id" {
				t.Fatalf("the hash after the first login: %v %.9s", err, u.PasswordHash)
			}

			boss := e.login(t, "legacy-admin@example.com")
			wantStatus(t, "admin login", boss, 200)
			var br authResponse
			boss.json(t, &br)
			if claimsOf(t, br.AccessToken).Sub != "usr_9f2" {
				t.Fatalf("admin sub %q", claimsOf(t, br.AccessToken).Sub)
			}
			got := e.adminUser(t, br.AccessToken, "123")
			if got.User.ID != "123" || got.User.Email != "legacy@example.com" || len(got.Sessions) != 1 {
				t.Fatalf("admin user 123: %+v", got)
			}
			wantStatus(t, "admin revokes 123's sessions", e.do(t, "POST", "/api/admin/users/123/revoke-sessions", nil, bearer(br.AccessToken)...), 204)
			wantCode(t, "the revoked session's refresh", e.refresh(t, next.RefreshToken), 401, "refresh_token_revoked")
			revoked := e.events(t, fluxauth.EventTokenRevoked)
			if len(revoked) == 0 || revoked[0].UserID != "123" || revoked[0].Metadata["by"] != "admin:usr_9f2" {
				t.Fatalf("token_revoked events %+v", revoked)
			}
			// IDs a prefix, a case or a character away name nobody.
			for _, id := range []string{"12", "1234", "USR_9F2", "123%20", "a%2Fb"} {
				wantStatus(t, "admin user "+id, e.do(t, "GET", "/api/admin/users/"+id, nil, bearer(br.AccessToken)...), 404)
			}
		}
	})
}
