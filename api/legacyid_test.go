package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

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

// An account imported with its Google subject (as the legacy server linked it) is the account a
// Google sign-in with that subject reaches, whatever address the Google account has now: the same
// ID, no second account, and the imported password still works beside it.
func TestAGoogleLinkedImportedAccountSignsInWithGoogle(t *testing.T) {
	p := newProviderEnv(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	now := p.Clock.Now()
	in := fluxauth.ImportedUser{
		User: fluxauth.User{ID: "123", Email: "imported@example.com", Name: "Imported", UserType: fluxauth.UserTypeClient,
			PasswordHash: string(hash), EmailVerifiedAt: now, CreatedAt: now.Add(-24 * time.Hour), UpdatedAt: now},
		Given:      fluxauth.ImportName | fluxauth.ImportPasswordHash | fluxauth.ImportEmailVerified,
		Identities: []fluxauth.Identity{{Provider: "google", Subject: "g-123", UserID: "123", Email: "imported@example.com", EmailVerified: true, CreatedAt: now}},
	}
	res, err := p.Store.ImportUsers(context.Background(), []fluxauth.ImportedUser{in}, fluxauth.ImportOptions{Now: now})
	if err != nil || len(res) != 1 || res[0].Outcome != fluxauth.ImportCreated {
		t.Fatalf("import: %+v, %v", res, err)
	}
	// The Google account's address is another one now: only the imported subject leads to 123.
	g := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "g-123", "renamed@example.com", true)})
	wantStatus(t, "google sign-in", g, http.StatusOK)
	var ar authResponse
	g.json(t, &ar)
	if ar.User.ID != "123" || claimsOf(t, ar.AccessToken).Sub != "123" {
		t.Fatalf("google sign-in reached user.id %q, sub %q; want the imported account 123", ar.User.ID, claimsOf(t, ar.AccessToken).Sub)
	}
	login := p.login(t, "imported@example.com")
	wantStatus(t, "password login after the Google sign-in", login, http.StatusOK)
	var lr authResponse
	login.json(t, &lr)
	if lr.User.ID != "123" {
		t.Fatalf("password login: user.id %q", lr.User.ID)
	}
}

// An import --update that changes an account's password hash ends its sessions (each a
// token_revoked event, so that an admin stream on one ends too) and records its change of type; one
// that changes only its name ends nothing.
func TestAnImportUpdateOfTheCredentialsEndsTheSessions(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.legacyUser(t, "123", "legacy@example.com", fluxauth.UserTypeAdmin)
		login := e.login(t, "legacy@example.com")
		wantStatus(t, "login", login, http.StatusOK)
		var ar authResponse
		login.json(t, &ar)
		current, err := e.Store.UserByID(ctx, "123")
		if err != nil {
			t.Fatal(err)
		}
		line := func(name, hash, userType string) fluxauth.ImportedUser {
			return fluxauth.ImportedUser{User: fluxauth.User{ID: "123", Email: "legacy@example.com", Name: name, UserType: userType, PasswordHash: hash},
				Given: fluxauth.ImportName | fluxauth.ImportPasswordHash | fluxauth.ImportUserType}
		}
		opt := fluxauth.ImportOptions{Update: true, Now: e.Clock.Now(), By: "cli:test"}
		res, err := e.Store.ImportUsers(ctx, []fluxauth.ImportedUser{line("Renamed", current.PasswordHash, fluxauth.UserTypeAdmin)}, opt)
		if err != nil || res[0].Outcome != fluxauth.ImportUpdated || res[0].SessionsRevoked != 0 {
			t.Fatalf("name update: %+v, %v", res, err)
		}
		next := e.mustRefresh(t, ar.RefreshToken)

		other, _ := bcrypt.GenerateFromPassword([]byte("another password here"), bcrypt.MinCost)
		res, err = e.Store.ImportUsers(ctx, []fluxauth.ImportedUser{line("Renamed", string(other), fluxauth.UserTypeClient)}, opt)
		if err != nil || res[0].Outcome != fluxauth.ImportUpdated || res[0].SessionsRevoked != 1 ||
			strings.Join(res[0].Fields, ",") != "userType,passwordHash" {
			t.Fatalf("credentials update: %+v, %v", res, err)
		}
		wantStatus(t, "refresh after the update", e.refresh(t, next.RefreshToken), http.StatusUnauthorized)
		revoked := e.events(t, fluxauth.EventTokenRevoked)
		if len(revoked) != 1 || revoked[0].Metadata["reason"] != "import_update" || revoked[0].Metadata["sessionId"] != claimsOf(t, ar.AccessToken).SID {
			t.Fatalf("token_revoked events: %+v", revoked)
		}
		if typed := e.events(t, fluxauth.EventUserTypeChanged); len(typed) != 1 || typed[0].Metadata["to"] != fluxauth.UserTypeClient {
			t.Fatalf("user_type_changed events: %+v", typed)
		}
	})
}
