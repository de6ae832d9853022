package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var userTests = []test{
	{"a user id is any string of the allowed characters, compared byte for byte", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		// IDs that differ only in letter case, or that a number's or a UUID's reading would make one.
		ids := []string{"123", "0123", "1e3", "usr_9f2", "USR_9F2", "a.b-c", "~:@._-", strings.Repeat("x", fluxauth.MaxUserIDLen),
			"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B"}
		for i, id := range ids {
			if !fluxauth.ValidUserID(id) {
				t.Fatalf("ValidUserID(%q) = false", id)
			}
			u := newUser(fmt.Sprintf("id-%d@example.com", i))
			u.ID = id
			must(t, "CreateUser "+id, s.CreateUser(ctx, u))
		}
		for i, id := range ids {
			got, err := s.UserByID(ctx, id)
			must(t, "UserByID "+id, err)
			if got.ID != id || got.Email != fmt.Sprintf("id-%d@example.com", i) {
				t.Errorf("UserByID(%q) = %q, %s", id, got.ID, got.Email)
			}
		}
		for _, id := range []string{"12", "123 ", "usr_9F2", "a.b-c.", "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b"} {
			if _, err := s.UserByID(ctx, id); !errors.Is(err, fluxauth.ErrNotFound) {
				t.Errorf("UserByID(%q) = %v, want not found", id, err)
			}
		}
	}},
	{"a user id outside the allowed characters or lengths is refused", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		for i, id := range []string{"", "a b", "a/b", "é", "a\x00b", "a%20b", "a+b", "<a>", strings.Repeat("x", fluxauth.MaxUserIDLen+1)} {
			if fluxauth.ValidUserID(id) {
				t.Fatalf("ValidUserID(%q) = true", id)
			}
			u := newUser(fmt.Sprintf("bad-%d@example.com", i))
			u.ID = id
			wantErr(t, fmt.Sprintf("CreateUser with ID %q", id), s.CreateUser(ctx, u), fluxauth.ErrInvalidData)
			if _, err := s.UserByEmail(ctx, u.Email); !errors.Is(err, fluxauth.ErrNotFound) {
				t.Errorf("the user with ID %q was stored: %v", id, err)
			}
		}
	}},
	{"created user reads back by id and by email with every field", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := newUser("ada@example.com")
		u.EmailVerifiedAt = at(2 * time.Second)
		must(t, "CreateUser", s.CreateUser(ctx, u))
		got, err := s.UserByID(ctx, u.ID)
		must(t, "UserByID", err)
		equal(t, "UserByID", got, u)
		got, err = s.UserByEmail(ctx, u.Email)
		must(t, "UserByEmail", err)
		equal(t, "UserByEmail", got, u)
	}},
	{"user without password reads back with an empty hash", func(t *testing.T, s fluxauth.Store) {
		u := newUser("google-only@example.com")
		u.PasswordHash = ""
		must(t, "CreateUser", s.CreateUser(context.Background(), u))
		got, err := s.UserByID(context.Background(), u.ID)
		must(t, "UserByID", err)
		equal(t, "UserByID", got, u)
	}},
	{"email taken in another letter case is a conflict", func(t *testing.T, s fluxauth.Store) {
		mustCreateUser(t, s, "Ada@Example.com")
		err := s.CreateUser(context.Background(), newUser("ada@EXAMPLE.COM"))
		wantErr(t, "CreateUser with the same email", err, fluxauth.ErrConflict)
	}},
	{"user id taken is a conflict", func(t *testing.T, s fluxauth.Store) {
		u := mustCreateUser(t, s, "first@example.com")
		dup := newUser("second@example.com")
		dup.ID = u.ID
		wantErr(t, "CreateUser with the same id", s.CreateUser(context.Background(), dup), fluxauth.ErrConflict)
	}},
	{"user by email ignores letter case", func(t *testing.T, s fluxauth.Store) {
		u := mustCreateUser(t, s, "Grace.Hopper@Example.com")
		got, err := s.UserByEmail(context.Background(), "grace.hopper@EXAMPLE.com")
		must(t, "UserByEmail", err)
		equal(t, "UserByEmail", got, u)
	}},
	{"lookalike addresses are one address: emails are compared in canonical form", func(t *testing.T, s fluxauth.Store) {
		// Both stores compare the canonical form of package emailaddr, computed in Go, so they agree
		// on non-ASCII letters whatever SQLite's NOCASE or PostgreSQL's locale would say.
		ctx := context.Background()
		for _, tc := range []struct{ stored, other string }{
			{"kate@example.com", "\u212Aate@example.com"}, // KELVIN SIGN for K
			{"élodie@example.com", "ÉLODIE@EXAMPLE.COM"},
			{"E\u0301mile@example.com", "émile@example.com"}, // E + COMBINING ACUTE, and precomposed
			{"jane@example.com", "ｊａｎｅ@example.com"},         // full-width letters
			{"hans@BÜCHER.example", "hans@xn--bcher-kva.example"},
		} {
			u := mustCreateUser(t, s, tc.stored)
			got, err := s.UserByEmail(ctx, tc.other)
			must(t, "UserByEmail("+tc.other+")", err)
			equal(t, "UserByEmail("+tc.other+")", got, u) // the email as given at signup, not its canonical form
			wantErr(t, "CreateUser("+tc.other+") when "+tc.stored+" exists", s.CreateUser(ctx, newUser(tc.other)), fluxauth.ErrConflict)
		}
		must(t, "SetUserType", s.SetUserType(ctx, "\u212AATE@EXAMPLE.COM", fluxauth.UserTypeAdmin, at(time.Hour)))
		got, err := s.UserByEmail(ctx, "kate@example.com")
		must(t, "UserByEmail", err)
		if got.UserType != fluxauth.UserTypeAdmin {
			t.Fatalf("SetUserType by a lookalike spelling did not reach the account: %+v", got)
		}
		// An accent is not a case: "elodie" is someone else.
		must(t, "CreateUser of another address", s.CreateUser(ctx, newUser("elodie@example.com")))
	}},
	{"missing user is not found", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		mustCreateUser(t, s, "someone@example.com")
		_, err := s.UserByID(ctx, newID())
		wantErr(t, "UserByID", err, fluxauth.ErrNotFound)
		_, err = s.UserByEmail(ctx, "nobody@example.com")
		wantErr(t, "UserByEmail", err, fluxauth.ErrNotFound)
	}},
	{"user id that is not a UUID is not found", func(t *testing.T, s fluxauth.Store) {
		_, err := s.UserByID(context.Background(), "legacy-42")
		wantErr(t, "UserByID", err, fluxauth.ErrNotFound)
	}},
	{"set password hash replaces the hash and the update time", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "ada@example.com")
		other := mustCreateUser(t, s, "other@example.com")
		must(t, "SetPasswordHash", s.SetPasswordHash(ctx, u.ID, "$2a$10$legacybcrypt", at(time.Hour)))
		got, err := s.UserByID(ctx, u.ID)
		must(t, "UserByID", err)
		u.PasswordHash, u.UpdatedAt = "$2a$10$legacybcrypt", at(time.Hour)
		equal(t, "user after SetPasswordHash", got, u)
		got, err = s.UserByID(ctx, other.ID)
		must(t, "UserByID other", err)
		equal(t, "other user", got, other)
	}},
	{"set password hash of a missing user is not found", func(t *testing.T, s fluxauth.Store) {
		err := s.SetPasswordHash(context.Background(), newID(), "x", at(0))
		wantErr(t, "SetPasswordHash", err, fluxauth.ErrNotFound)
	}},
	{"set user type finds the user by email in any letter case", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "Admin@Example.com")
		must(t, "SetUserType", s.SetUserType(ctx, "admin@example.COM", fluxauth.UserTypeAdmin, at(time.Hour)))
		got, err := s.UserByID(ctx, u.ID)
		must(t, "UserByID", err)
		u.UserType, u.UpdatedAt = fluxauth.UserTypeAdmin, at(time.Hour)
		equal(t, "user after SetUserType", got, u)
	}},
	{"set user type of an unknown email is not found", func(t *testing.T, s fluxauth.Store) {
		mustCreateUser(t, s, "someone@example.com")
		err := s.SetUserType(context.Background(), "nobody@example.com", fluxauth.UserTypeAdmin, at(0))
		wantErr(t, "SetUserType", err, fluxauth.ErrNotFound)
	}},
	{"set user type by id in a transaction changes that user only", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "promoted@example.com")
		other := mustCreateUser(t, s, "bystander@example.com")
		must(t, "Update", s.Update(ctx, func(tx fluxauth.Tx) error {
			return tx.SetUserType(ctx, u.ID, fluxauth.UserTypeAdmin, at(time.Hour))
		}))
		got, err := s.UserByID(ctx, u.ID)
		must(t, "UserByID", err)
		u.UserType, u.UpdatedAt = fluxauth.UserTypeAdmin, at(time.Hour)
		equal(t, "user after Tx.SetUserType", got, u)
		got, err = s.UserByID(ctx, other.ID)
		must(t, "UserByID other", err)
		equal(t, "other user", got, other)
		err = s.Update(ctx, func(tx fluxauth.Tx) error { return tx.SetUserType(ctx, newID(), fluxauth.UserTypeAdmin, at(0)) })
		wantErr(t, "Tx.SetUserType of a missing user", err, fluxauth.ErrNotFound)
	}},
	{"times keep microseconds and come back in UTC", func(t *testing.T, s fluxauth.Store) {
		u := newUser("clock@example.com")
		u.CreatedAt = time.Date(2030, 12, 31, 23, 59, 59, 999999999, time.FixedZone("X", -7*3600))
		u.UpdatedAt = u.CreatedAt
		must(t, "CreateUser", s.CreateUser(context.Background(), u))
		got, err := s.UserByID(context.Background(), u.ID)
		must(t, "UserByID", err)
		want := time.Date(2031, 1, 1, 6, 59, 59, 999999000, time.UTC)
		if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
			t.Fatalf("CreatedAt = %v, want %v", got.CreatedAt, want)
		}
	}},
}

var identityTests = []test{
	{"created identity reads back by provider and subject", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "ada@example.com")
		id := &fluxauth.Identity{Provider: "google", Subject: "1098765", UserID: u.ID, Email: "ada@gmail.com", EmailVerified: true, CreatedAt: at(0)}
		must(t, "CreateIdentity", s.CreateIdentity(ctx, id))
		got, err := s.IdentityBySubject(ctx, "google", "1098765")
		must(t, "IdentityBySubject", err)
		equal(t, "IdentityBySubject", got, id)
		unverified := &fluxauth.Identity{Provider: "apple", Subject: "0042.abc", UserID: u.ID, Email: "ada@icloud.com", CreatedAt: at(0)}
		must(t, "CreateIdentity", s.CreateIdentity(ctx, unverified))
		got, err = s.IdentityBySubject(ctx, "apple", "0042.abc")
		must(t, "IdentityBySubject", err)
		equal(t, "IdentityBySubject of an unverified email", got, unverified)
	}},
	{"same provider and subject is a conflict but another provider is not", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "ada@example.com")
		v := mustCreateUser(t, s, "bob@example.com")
		must(t, "CreateIdentity", s.CreateIdentity(ctx, &fluxauth.Identity{Provider: "google", Subject: "s1", UserID: u.ID, CreatedAt: at(0)}))
		err := s.CreateIdentity(ctx, &fluxauth.Identity{Provider: "google", Subject: "s1", UserID: v.ID, CreatedAt: at(0)})
		wantErr(t, "CreateIdentity duplicate", err, fluxauth.ErrConflict)
		must(t, "CreateIdentity other provider", s.CreateIdentity(ctx, &fluxauth.Identity{Provider: "apple", Subject: "s1", UserID: v.ID, CreatedAt: at(0)}))
	}},
	{"missing identity is not found", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "ada@example.com")
		must(t, "CreateIdentity", s.CreateIdentity(ctx, &fluxauth.Identity{Provider: "google", Subject: "s1", UserID: u.ID, CreatedAt: at(0)}))
		_, err := s.IdentityBySubject(ctx, "apple", "s1")
		wantErr(t, "IdentityBySubject", err, fluxauth.ErrNotFound)
		_, err = s.IdentityBySubject(ctx, "google", "s2")
		wantErr(t, "IdentityBySubject", err, fluxauth.ErrNotFound)
	}},
	{"user and identity created in one update commit together", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := newUser("apple-user@example.com")
		id := &fluxauth.Identity{Provider: "apple", Subject: "001234.abcd", Email: u.Email, CreatedAt: at(0)}
		update(t, s, func(tx fluxauth.Tx) error {
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
			id.UserID = u.ID // as created: the legacy-ID runs give it another
			return tx.CreateIdentity(ctx, id)
		})
		got, err := s.IdentityBySubject(ctx, "apple", "001234.abcd")
		must(t, "IdentityBySubject", err)
		equal(t, "identity", got, id)
		gotU, err := s.UserByEmail(ctx, u.Email)
		must(t, "UserByEmail", err)
		equal(t, "user", gotU, u)
	}},
	{"conflicts inside an update are reported as conflicts", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		mustCreateUser(t, s, "taken@example.com")
		err := s.Update(ctx, func(tx fluxauth.Tx) error { return tx.CreateUser(ctx, newUser("TAKEN@example.com")) })
		wantErr(t, "tx.CreateUser", err, fluxauth.ErrConflict)
	}},
}

// passwordHashParamsTests pin down PasswordHashParams: one key per kind of stored hash, computed in
// the database, with accounts without a password adding none.
var passwordHashParamsTests = []test{
	{"password hash params lists each parameter set once and no salt or key", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		keys, err := s.PasswordHashParams(ctx)
		must(t, "PasswordHashParams of an empty store", err)
		if len(keys) != 0 {
			t.Fatalf("PasswordHashParams of an empty store = %q, want none", keys)
		}
		const (
			bcryptBody = "N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy" // 22 salt and 31 digest characters
			salt, key  = "c29tZXNhbHQ", "RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
		)
		for i, hash := range []string{
			"$2b$10$" + bcryptBody,
			"$2b$10$" + bcryptBody[1:] + "a", // another hash of the same cost
			"$2b$12$" + bcryptBody,
			"$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$" + key,
			"$argon2id$v=19$m=65536,t=3,p=4$" + key + "$" + salt,
			"$argon2i$v=19$m=4096,t=3,p=1$" + salt + "$" + key,
			"", "",
		} {
			u := newUser(fmt.Sprintf("params-%d@example.com", i))
			u.PasswordHash = hash
			must(t, "CreateUser", s.CreateUser(ctx, u))
		}
		keys, err = s.PasswordHashParams(ctx)
		must(t, "PasswordHashParams", err)
		slices.Sort(keys)
		want := []string{"$2b$10$", "$2b$12$", "$argon2i$v=19$m=4096,t=3,p=1$", "$argon2id$v=19$m=65536,t=3,p=4$"}
		if !slices.Equal(keys, want) {
			t.Fatalf("PasswordHashParams = %q, want %q", keys, want)
		}
	}},
}
