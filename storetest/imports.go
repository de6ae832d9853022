package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// importLine is an import line for the account u gives, with every field given, and its identities.
func importLine(u *fluxauth.User, ids ...fluxauth.Identity) fluxauth.ImportedUser {
	for i := range ids {
		ids[i].UserID, ids[i].Email, ids[i].CreatedAt = u.ID, u.Email, u.CreatedAt
	}
	return fluxauth.ImportedUser{User: *u, Identities: ids,
		Given: fluxauth.ImportName | fluxauth.ImportUserType | fluxauth.ImportPasswordHash | fluxauth.ImportEmailVerified | fluxauth.ImportCreatedAt}
}

func importBatch(t *testing.T, s fluxauth.Backend, opt fluxauth.ImportOptions, lines ...fluxauth.ImportedUser) []fluxauth.ImportResult {
	t.Helper()
	if opt.Now.IsZero() {
		opt.Now = at(time.Hour)
	}
	res, err := s.ImportUsers(context.Background(), lines, opt)
	must(t, "ImportUsers", err)
	if len(res) != len(lines) {
		t.Fatalf("ImportUsers: %d results for %d lines", len(res), len(lines))
	}
	return res
}

func outcomes(res []fluxauth.ImportResult) []fluxauth.ImportOutcome {
	var o []fluxauth.ImportOutcome
	for _, r := range res {
		o = append(o, r.Outcome)
	}
	return o
}

var importTests = []storageTest{
	{"ImportUsers creates accounts as given, then finds them unchanged", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		a, b := newUser("a@example.com"), newUser("b@example.com")
		a.ID, b.ID = "123", "usr_9f2"
		b.EmailVerifiedAt, b.PasswordHash = at(time.Hour), ""
		lines := []fluxauth.ImportedUser{importLine(a), importLine(b, fluxauth.Identity{Provider: "google", Subject: "g-b", EmailVerified: true})}
		if got := outcomes(importBatch(t, s, fluxauth.ImportOptions{}, lines...)); !slices.Equal(got, []fluxauth.ImportOutcome{fluxauth.ImportCreated, fluxauth.ImportCreated}) {
			t.Fatalf("first import: %v", got)
		}
		for _, u := range []*fluxauth.User{a, b} {
			got, err := s.UserByID(ctx, u.ID)
			must(t, "UserByID", err)
			equal(t, "imported "+u.ID, got, u)
		}
		id, err := s.IdentityBySubject(ctx, "google", "g-b")
		must(t, "IdentityBySubject", err)
		equal(t, "identity", id, &fluxauth.Identity{Provider: "google", Subject: "g-b", UserID: b.ID, Email: b.Email, EmailVerified: true, CreatedAt: b.CreatedAt})
		if got := outcomes(importBatch(t, s, fluxauth.ImportOptions{}, lines...)); !slices.Equal(got, []fluxauth.ImportOutcome{fluxauth.ImportUnchanged, fluxauth.ImportUnchanged}) {
			t.Fatalf("second import: %v", got)
		}
		// Fields a line leaves out are not compared.
		bare := fluxauth.ImportedUser{User: fluxauth.User{ID: a.ID, Email: a.Email}}
		if got := importBatch(t, s, fluxauth.ImportOptions{}, bare); got[0].Outcome != fluxauth.ImportUnchanged {
			t.Fatalf("a line with only id and email: %+v", got[0])
		}
	}},
	{"ImportUsers reports an account with other data and updates it only when asked", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		a := newUser("a@example.com")
		importBatch(t, s, fluxauth.ImportOptions{}, importLine(a))
		changed := *a
		changed.Name, changed.Email, changed.EmailVerifiedAt = "Renamed", "A@Example.com", at(time.Hour)
		line := importLine(&changed, fluxauth.Identity{Provider: "apple", Subject: "a-1"})
		res := importBatch(t, s, fluxauth.ImportOptions{}, line)
		if res[0].Outcome != fluxauth.ImportDiffers || !slices.Equal(res[0].Fields, []string{"email", "name", "emailVerified", "apple"}) {
			t.Fatalf("without Update: %+v", res[0])
		}
		got, err := s.UserByID(ctx, a.ID)
		must(t, "UserByID", err)
		equal(t, "left as it was", got, a)
		res = importBatch(t, s, fluxauth.ImportOptions{Update: true, Now: at(2 * time.Hour)}, line)
		if res[0].Outcome != fluxauth.ImportUpdated {
			t.Fatalf("with Update: %+v", res[0])
		}
		got, err = s.UserByID(ctx, a.ID)
		must(t, "UserByID", err)
		want := changed
		want.EmailVerifiedAt, want.UpdatedAt = at(2*time.Hour), at(2*time.Hour)
		equal(t, "updated", got, &want)
		if u, err := s.UserByEmail(ctx, "a@EXAMPLE.com"); err != nil || u.ID != a.ID {
			t.Fatalf("the updated email is the account's key: %v, %v", u, err)
		}
		if id, err := s.IdentityBySubject(ctx, "apple", "a-1"); err != nil || id.UserID != a.ID {
			t.Fatalf("the identity the update named: %+v, %v", id, err)
		}
	}},
	{"ImportUsers refuses an email or identity another account holds, and creates nothing for it", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		held := newUser("held@example.com")
		must(t, "CreateUser", s.CreateUser(ctx, held))
		mustCreateIdentity(t, s, held.ID, "google", "g-held", true)
		byEmail, byIdentity, fine := newUser("HELD@example.com"), newUser("other@example.com"), newUser("fine@example.com")
		res := importBatch(t, s, fluxauth.ImportOptions{},
			importLine(byEmail), importLine(byIdentity, fluxauth.Identity{Provider: "google", Subject: "g-held"}), importLine(fine))
		if res[0].Outcome != fluxauth.ImportEmailTaken || res[0].OtherUserID != held.ID {
			t.Errorf("email: %+v", res[0])
		}
		if res[1].Outcome != fluxauth.ImportIdentityTaken || res[1].OtherUserID != held.ID || res[1].Provider != "google" {
			t.Errorf("identity: %+v", res[1])
		}
		if res[2].Outcome != fluxauth.ImportCreated {
			t.Errorf("the good line beside them: %+v", res[2])
		}
		for _, u := range []*fluxauth.User{byEmail, byIdentity} {
			if _, err := s.UserByID(ctx, u.ID); !errors.Is(err, fluxauth.ErrNotFound) {
				t.Errorf("refused line %s created: %v", u.Email, err)
			}
		}
	}},
	{"ImportUsers in a dry run classifies the batch and writes nothing", func(t *testing.T, s fluxauth.Backend) {
		ctx := context.Background()
		a := newUser("a@example.com")
		res := importBatch(t, s, fluxauth.ImportOptions{DryRun: true}, importLine(a, fluxauth.Identity{Provider: "google", Subject: "g-a"}))
		if res[0].Outcome != fluxauth.ImportCreated {
			t.Fatalf("dry run: %+v", res[0])
		}
		if _, err := s.UserByID(ctx, a.ID); !errors.Is(err, fluxauth.ErrNotFound) {
			t.Fatalf("the dry run created the account: %v", err)
		}
		if _, err := s.IdentityBySubject(ctx, "google", "g-a"); !errors.Is(err, fluxauth.ErrNotFound) {
			t.Fatalf("the dry run linked the identity: %v", err)
		}
	}},
}
