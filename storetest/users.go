package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var userTests = []test{
	{"created user reads back by id and by email with every field", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "ada@example.com")
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
	{"email case is ignored for ASCII letters only", func(t *testing.T, s fluxauth.Store) {
		// Until the canonical form of an email is decided, both stores fold A-Z and nothing else:
		// SQLite's NOCASE cannot do more, and PostgreSQL's lower() would do more or less depending
		// on the database's locale. Non-ASCII letters in another case make another address.
		ctx := context.Background()
		lower := mustCreateUser(t, s, "élodie@example.com")
		got, err := s.UserByEmail(ctx, "élodie@EXAMPLE.COM")
		must(t, "UserByEmail with ASCII letters in another case", err)
		equal(t, "UserByEmail", got, lower)
		_, err = s.UserByEmail(ctx, "ÉLODIE@example.com")
		wantErr(t, "UserByEmail with a non-ASCII letter in another case", err, fluxauth.ErrNotFound)

		upper := mustCreateUser(t, s, "Élodie@example.com") // no conflict: another address
		got, err = s.UserByEmail(ctx, "ÉLODIE@example.com")
		must(t, "UserByEmail of the second address", err)
		equal(t, "UserByEmail of the second address", got, upper)
		must(t, "SetUserType", s.SetUserType(ctx, "ÉLODIE@EXAMPLE.COM", fluxauth.UserTypeAdmin, at(time.Hour)))
		got, err = s.UserByID(ctx, upper.ID)
		must(t, "UserByID", err)
		upper.UserType, upper.UpdatedAt = fluxauth.UserTypeAdmin, at(time.Hour)
		equal(t, "the second address after SetUserType", got, upper)
		got, err = s.UserByID(ctx, lower.ID)
		must(t, "UserByID", err)
		equal(t, "the first address after SetUserType of the second", got, lower)

		// Nor does a non-ASCII letter fold into an ASCII one: U+212A KELVIN SIGN lowers to k.
		kate := mustCreateUser(t, s, "kate@example.com")
		_, err = s.UserByEmail(ctx, "\u212Aate@example.com")
		wantErr(t, "UserByEmail with the Kelvin sign for k", err, fluxauth.ErrNotFound)
		must(t, "CreateUser with the Kelvin sign for k", s.CreateUser(ctx, newUser("\u212Aate@example.com")))
		got, err = s.UserByEmail(ctx, "KATE@example.com")
		must(t, "UserByEmail", err)
		equal(t, "UserByEmail", got, kate)
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
		id := &fluxauth.Identity{Provider: "google", Subject: "1098765", UserID: u.ID, Email: "ada@gmail.com", CreatedAt: at(0)}
		must(t, "CreateIdentity", s.CreateIdentity(ctx, id))
		got, err := s.IdentityBySubject(ctx, "google", "1098765")
		must(t, "IdentityBySubject", err)
		equal(t, "IdentityBySubject", got, id)
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
		id := &fluxauth.Identity{Provider: "apple", Subject: "001234.abcd", UserID: u.ID, Email: u.Email, CreatedAt: at(0)}
		update(t, s, func(tx fluxauth.Tx) error {
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
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
