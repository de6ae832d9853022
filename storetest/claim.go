package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

func mustCreateIdentity(tb testing.TB, s fluxauth.Store, userID, provider, subject string, verified bool) *fluxauth.Identity {
	tb.Helper()
	id := &fluxauth.Identity{Provider: provider, Subject: subject, UserID: userID, Email: subject + "@example.com", EmailVerified: verified, CreatedAt: at(0)}
	must(tb, "CreateIdentity", s.CreateIdentity(context.Background(), id))
	return id
}

func wantIdentities(tb testing.TB, what string, got []*fluxauth.Identity, want ...*fluxauth.Identity) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d identities %+v, want %d", what, len(got), got, len(want))
	}
	for i := range want {
		equal(tb, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

var claimTests = []test{
	{"LockUser and IdentityBySubject read inside a transaction", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := newUser("ada@example.com")
		u.EmailVerifiedAt = at(time.Minute)
		must(t, "CreateUser", s.CreateUser(ctx, u))
		id := mustCreateIdentity(t, s, u.ID, "google", "ada", true)
		update(t, s, func(tx fluxauth.Tx) error {
			got, err := tx.LockUser(ctx, u.ID)
			must(t, "LockUser", err)
			equal(t, "LockUser", got, u)
			gotID, err := tx.IdentityBySubject(ctx, "google", "ada")
			must(t, "IdentityBySubject", err)
			equal(t, "IdentityBySubject", gotID, id)
			_, err = tx.LockUser(ctx, newID())
			wantErr(t, "LockUser of a missing user", err, fluxauth.ErrNotFound)
			_, err = tx.LockUser(ctx, "legacy-42")
			wantErr(t, "LockUser of an ID that is not a UUID", err, fluxauth.ErrNotFound)
			_, err = tx.IdentityBySubject(ctx, "apple", "ada")
			wantErr(t, "IdentityBySubject of a missing identity", err, fluxauth.ErrNotFound)
			return nil
		})
	}},
	{"IdentitiesOf and DeleteIdentities inside a transaction", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "ada@example.com")
		other := mustCreateUser(t, s, "bob@example.com")
		g := mustCreateIdentity(t, s, u.ID, "google", "ada-g", true)
		a := &fluxauth.Identity{Provider: "apple", Subject: "ada-a", UserID: u.ID, Email: "ada-a@example.com", CreatedAt: at(time.Minute)}
		must(t, "CreateIdentity", s.CreateIdentity(ctx, a))
		bobs := mustCreateIdentity(t, s, other.ID, "google", "bob-g", true)
		update(t, s, func(tx fluxauth.Tx) error {
			ids, err := tx.IdentitiesOf(ctx, u.ID)
			must(t, "IdentitiesOf", err)
			wantIdentities(t, "IdentitiesOf", ids, g, a)
			ids, err = tx.IdentitiesOf(ctx, "legacy-1")
			must(t, "IdentitiesOf of an impossible ID", err)
			wantIdentities(t, "IdentitiesOf of an impossible ID", ids)
			n, err := tx.DeleteIdentities(ctx, u.ID, "google")
			must(t, "DeleteIdentities", err)
			if n != 1 {
				t.Fatalf("DeleteIdentities deleted %d, want 1", n)
			}
			n, err = tx.DeleteIdentities(ctx, u.ID, "google")
			must(t, "DeleteIdentities again", err)
			if n != 0 {
				t.Fatalf("DeleteIdentities again deleted %d, want 0", n)
			}
			ids, err = tx.IdentitiesOf(ctx, u.ID)
			must(t, "IdentitiesOf after delete", err)
			wantIdentities(t, "IdentitiesOf after delete", ids, a)
			return nil
		})
		got, err := s.IdentityBySubject(ctx, "google", "bob-g")
		must(t, "another user's identity", err)
		equal(t, "another user's identity", got, bobs)
		_, err = s.IdentityBySubject(ctx, "google", "ada-g")
		wantErr(t, "deleted identity", err, fluxauth.ErrNotFound)
	}},
	{"SetPasswordHash inside a transaction replaces the hash", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "ada@example.com")
		update(t, s, func(tx fluxauth.Tx) error {
			must(t, "SetPasswordHash", tx.SetPasswordHash(ctx, u.ID, "$argon2id$new", at(time.Hour)))
			wantErr(t, "SetPasswordHash of a missing user", tx.SetPasswordHash(ctx, newID(), "x", at(0)), fluxauth.ErrNotFound)
			return nil
		})
		got, err := s.UserByID(ctx, u.ID)
		must(t, "UserByID", err)
		u.PasswordHash, u.UpdatedAt = "$argon2id$new", at(time.Hour)
		equal(t, "user after SetPasswordHash", got, u)
	}},
	{"ClaimUser removes the password and unverified identities, keeps the claimant's and verified ones", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, s, "victim@example.com")
		claimant := mustCreateIdentity(t, s, u.ID, "google", "owner", false) // linked before verification was recorded
		attacker := mustCreateIdentity(t, s, u.ID, "apple", "squatter", false)
		verified := mustCreateIdentity(t, s, u.ID, "apple", "owner-apple", true)
		other := mustCreateUser(t, s, "other@example.com")
		othersUnverified := mustCreateIdentity(t, s, other.ID, "google", "someone", false)

		var removed fluxauth.RemovedCredentials
		update(t, s, func(tx fluxauth.Tx) error {
			var err error
			removed, err = tx.ClaimUser(ctx, u.ID, "google", "owner", at(time.Hour))
			return err
		})
		if want := (fluxauth.RemovedCredentials{Password: true, Identities: 1}); removed != want || !removed.Any() {
			t.Fatalf("ClaimUser removed %+v, want %+v", removed, want)
		}
		got, err := s.UserByID(ctx, u.ID)
		must(t, "UserByID", err)
		u.PasswordHash, u.EmailVerifiedAt, u.UpdatedAt = "", at(time.Hour), at(time.Hour)
		equal(t, "claimed user", got, u)
		gotID, err := s.IdentityBySubject(ctx, "google", "owner")
		must(t, "the claimant's identity", err)
		claimant.EmailVerified = true
		equal(t, "the claimant's identity", gotID, claimant)
		_, err = s.IdentityBySubject(ctx, attacker.Provider, attacker.Subject)
		wantErr(t, "the unverified identity", err, fluxauth.ErrNotFound)
		gotID, err = s.IdentityBySubject(ctx, verified.Provider, verified.Subject)
		must(t, "the verified identity", err)
		equal(t, "the verified identity", gotID, verified)
		gotID, err = s.IdentityBySubject(ctx, othersUnverified.Provider, othersUnverified.Subject)
		must(t, "another account's unverified identity", err)
		equal(t, "another account's unverified identity", gotID, othersUnverified)
		gotOther, err := s.UserByID(ctx, other.ID)
		must(t, "UserByID other", err)
		equal(t, "another account", gotOther, other)
	}},
	{"ClaimUser of an account with no other credential removes nothing and proves the email", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := newUser("google-only@example.com")
		u.PasswordHash = ""
		must(t, "CreateUser", s.CreateUser(ctx, u))
		mustCreateIdentity(t, s, u.ID, "google", "owner", false)
		var removed fluxauth.RemovedCredentials
		update(t, s, func(tx fluxauth.Tx) error {
			var err error
			removed, err = tx.ClaimUser(ctx, u.ID, "google", "owner", at(time.Hour))
			return err
		})
		if removed.Any() {
			t.Fatalf("ClaimUser removed %+v from an account with nothing to remove", removed)
		}
		got, err := s.UserByID(ctx, u.ID)
		must(t, "UserByID", err)
		u.EmailVerifiedAt, u.UpdatedAt = at(time.Hour), at(time.Hour)
		equal(t, "claimed user", got, u)
	}},
	{"ClaimUser of a missing user is not found", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		err := s.Update(ctx, func(tx fluxauth.Tx) error {
			_, err := tx.ClaimUser(ctx, newID(), "google", "x", at(0))
			return err
		})
		wantErr(t, "ClaimUser", err, fluxauth.ErrNotFound)
	}},
}

var userLockTests = []backendTest{
	{"LockUser holds the account until commit, so a sign-in after a claim reads the claim", func(t *testing.T, b Backend) {
		// What a password login relies on: its transaction locks the account, and if a claim holds
		// it, waits and then reads the password hash the claim removed.
		ctx := context.Background()
		u := mustCreateUser(t, b.Store, "victim@example.com")
		var seen *fluxauth.User
		secondWaitsForFirst(t, b,
			func(tx fluxauth.Tx) error {
				if _, err := tx.LockUser(ctx, u.ID); err != nil {
					return fmt.Errorf("LockUser: %w", err)
				}
				_, err := tx.ClaimUser(ctx, u.ID, "google", "owner", at(time.Hour))
				return err
			},
			func(tx fluxauth.Tx, locked func()) error {
				got, err := tx.LockUser(ctx, u.ID)
				if err != nil {
					return fmt.Errorf("LockUser: %w", err)
				}
				locked()
				seen = got
				return nil
			})
		if seen.PasswordHash != "" || !seen.EmailVerified() {
			t.Fatalf("after the lock the second transaction read %+v, not the claim the first committed", seen)
		}
	}},
}

// secondWaitsForFirst runs first in a transaction that, once first has returned, stays open until a
// second transaction, running second, is seen queued on a lock (b.LockWaits rises); then it commits,
// and second's transaction is let through. second calls locked once past the lock it must wait on;
// doing so while the first is open fails t.
func secondWaitsForFirst(t *testing.T, b Backend, first func(tx fluxauth.Tx) error, second func(tx fluxauth.Tx, locked func()) error) {
	t.Helper()
	secondWaitsForFirstThen(t, b, true, first, second)
}

// errRolledBack ends the first transaction of secondWaitsForFirstThen when it must not commit.
var errRolledBack = errors.New("storetest: rolled back on purpose")

// secondWaitsForFirstThen is secondWaitsForFirst whose first transaction commits, or rolls back when
// commit is false.
func secondWaitsForFirstThen(t *testing.T, b Backend, commit bool, first func(tx fluxauth.Tx) error, second func(tx fluxauth.Tx, locked func()) error) {
	t.Helper()
	ctx := context.Background()
	holding, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	releaseFirst := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseFirst() // a failure below must not leave the first transaction open
	firstDone := make(chan error, 1)
	go func() {
		var holdOnce sync.Once
		firstDone <- b.Store.Update(ctx, func(tx fluxauth.Tx) error {
			if err := first(tx); err != nil {
				return err
			}
			holdOnce.Do(func() { close(holding) })
			<-release
			if !commit {
				return errRolledBack
			}
			return nil
		})
	}()
	select {
	case <-holding:
	case err := <-firstDone:
		t.Fatalf("first transaction: %v", err)
	}

	base, err := b.LockWaits(ctx)
	must(t, "LockWaits", err)
	locked, secondDone := make(chan struct{}, 1), make(chan error, 1)
	go func() {
		secondDone <- b.Store.Update(ctx, func(tx fluxauth.Tx) error {
			return second(tx, func() {
				select {
				case locked <- struct{}{}:
				default: // a retried attempt
				}
			})
		})
	}()
	const patience = 30 * time.Second
	deadline := time.Now().Add(patience)
	for {
		select {
		case <-locked:
			t.Fatal("the second transaction got past the lock while the first held it")
		case err := <-secondDone:
			t.Fatalf("the second transaction ended while the first held the lock: %v", err)
		default:
		}
		n, err := b.LockWaits(ctx)
		must(t, "LockWaits", err)
		if n > base {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second transaction neither queued on a lock nor got past it within %v", patience)
		}
		time.Sleep(time.Millisecond) // poll interval, not synchronisation: the loop waits for the condition
	}
	select {
	case <-locked:
		t.Fatal("the second transaction got past the lock while the first held it")
	default:
	}
	releaseFirst()
	if err := <-firstDone; commit && err != nil || !commit && !errors.Is(err, errRolledBack) {
		t.Fatalf("first transaction: %v", err)
	}
	if err := <-secondDone; err != nil {
		t.Fatalf("second transaction: %v", err)
	}
}
