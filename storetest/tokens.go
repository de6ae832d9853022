package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var tokenTests = []test{
	{"inserted token reads back by hash with every field", func(t *testing.T, s fluxauth.Store) {
		rt := newToken(newID(), at(0))
		insertTokens(t, s, rt)
		equal(t, "RefreshTokenByHash", readToken(t, s, rt.TokenHash), rt)
	}},
	{"token without device details reads back with empty strings", func(t *testing.T, s fluxauth.Store) {
		rt := newToken(newID(), at(0))
		rt.DeviceName, rt.DeviceFingerprint, rt.IPAddress, rt.UserAgent = "", "", "", ""
		insertTokens(t, s, rt)
		equal(t, "token", readToken(t, s, rt.TokenHash), rt)
	}},
	{"token inserted already spent and revoked keeps those marks", func(t *testing.T, s fluxauth.Store) {
		rt := newToken(newID(), at(0))
		rt.SpentAt, rt.RevokedAt, rt.RevokeReason = at(time.Minute), at(time.Hour), "admin"
		insertTokens(t, s, rt)
		got := readToken(t, s, rt.TokenHash)
		equal(t, "token", got, rt)
		if !got.Spent() || !got.Revoked() {
			t.Fatalf("Spent() = %v, Revoked() = %v, want both true", got.Spent(), got.Revoked())
		}
	}},
	{"token hash is unique", func(t *testing.T, s fluxauth.Store) {
		a := newToken(newID(), at(0))
		insertTokens(t, s, a)
		b := newToken(newID(), at(0))
		b.TokenHash = a.TokenHash
		err := s.Update(context.Background(), func(tx fluxauth.Tx) error {
			return tx.InsertRefreshToken(context.Background(), b)
		})
		wantErr(t, "InsertRefreshToken with a taken hash", err, fluxauth.ErrConflict)
	}},
	{"missing tokens and sessions are not found", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		rt := newToken(newID(), at(0))
		insertTokens(t, s, rt)
		_, _, err := s.SessionRevoked(ctx, newID())
		wantErr(t, "SessionRevoked", err, fluxauth.ErrNotFound)
		_, _, err = s.SessionRevoked(ctx, "not-a-uuid")
		wantErr(t, "SessionRevoked malformed id", err, fluxauth.ErrNotFound)
		err = s.Update(ctx, func(tx fluxauth.Tx) error {
			_, err := tx.RefreshTokenByHash(ctx, hashOf("nope"))
			wantErr(t, "tx.RefreshTokenByHash", err, fluxauth.ErrNotFound)
			_, err = tx.SessionTip(ctx, newID())
			wantErr(t, "tx.SessionTip", err, fluxauth.ErrNotFound)
			ok, err := tx.RotateRefreshToken(ctx, newID(), childOf(rt, at(time.Minute)), at(time.Minute))
			must(t, "tx.RotateRefreshToken of an unknown token", err)
			if ok {
				t.Error("an unknown token was rotated")
			}
			n, err := tx.RevokeSession(ctx, newID(), at(time.Minute), "logout")
			must(t, "tx.RevokeSession", err)
			if n != 0 {
				t.Errorf("RevokeSession of an unknown session = %d, want 0", n)
			}
			return nil
		})
		must(t, "Update", err)
	}},
	{"a rotated chain links each token to its parent", func(t *testing.T, s fluxauth.Store) {
		root := newToken(newID(), at(0))
		insertTokens(t, s, root)
		mid := rotate(t, s, root, at(time.Minute))
		tip := rotate(t, s, mid, at(2*time.Minute))
		equal(t, "spent root", readToken(t, s, root.TokenHash), root)
		equal(t, "spent middle", readToken(t, s, mid.TokenHash), mid)
		equal(t, "tip", readToken(t, s, tip.TokenHash), tip)
		if mid.ParentID != root.ID || tip.ParentID != mid.ID {
			t.Fatalf("parents %s, %s", mid.ParentID, tip.ParentID)
		}
	}},
	{"session tip is only ever the live token", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		root := newToken(newID(), at(0))
		other := newToken(root.UserID, at(0))
		insertTokens(t, s, root, other)
		tipOf := func(sessionID string) (*fluxauth.RefreshToken, error) {
			var tip *fluxauth.RefreshToken
			err := s.Update(ctx, func(tx fluxauth.Tx) error {
				var err error
				tip, err = tx.SessionTip(ctx, sessionID)
				return err
			})
			return tip, err
		}
		tip, err := tipOf(root.SessionID)
		must(t, "SessionTip of a new session", err)
		equal(t, "tip of a new session", tip, root)

		mid := rotate(t, s, root, at(time.Minute))
		last := rotate(t, s, mid, at(2*time.Minute))
		tip, err = tipOf(root.SessionID)
		must(t, "SessionTip after rotations", err)
		equal(t, "tip after rotations", tip, last)

		// A session whose every token is spent has no live token.
		allSpent := newToken(root.UserID, at(0))
		allSpent.SpentAt = at(time.Minute)
		insertTokens(t, s, allSpent)
		_, err = tipOf(allSpent.SessionID)
		wantErr(t, "SessionTip with every token spent", err, fluxauth.ErrNotFound)

		update(t, s, func(tx fluxauth.Tx) error {
			_, err := tx.RevokeSession(ctx, other.SessionID, at(time.Hour), "logout")
			return err
		})
		_, err = tipOf(other.SessionID)
		wantErr(t, "SessionTip of a revoked session", err, fluxauth.ErrNotFound)
	}},
	{"revoking a session marks each not yet revoked token once and counts them", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		root := newToken(newID(), at(0))
		bystander := newToken(root.UserID, at(0))
		insertTokens(t, s, root, bystander)
		mid := rotate(t, s, root, at(time.Minute))
		// Inserted revoked already: RevokeSession must neither count nor restamp it.
		early := childOf(mid, at(90*time.Second))
		early.TokenHash = hashOf("early")
		early.ParentID = ""
		early.RevokedAt, early.RevokeReason = at(90*time.Second), "earlier"
		insertTokens(t, s, early)
		tip := rotate(t, s, mid, at(2*time.Minute))

		var n int
		update(t, s, func(tx fluxauth.Tx) error {
			var err error
			n, err = tx.RevokeSession(ctx, root.SessionID, at(time.Hour), "logout")
			return err
		})
		if n != 3 {
			t.Fatalf("RevokeSession = %d, want 3 (root, mid, tip)", n)
		}
		for _, rt := range []*fluxauth.RefreshToken{root, mid, tip} {
			rt.RevokedAt, rt.RevokeReason = at(time.Hour), "logout"
			equal(t, "revoked token", readToken(t, s, rt.TokenHash), rt)
		}
		equal(t, "token revoked earlier", readToken(t, s, early.TokenHash), early)
		equal(t, "token of another session", readToken(t, s, bystander.TokenHash), bystander)

		update(t, s, func(tx fluxauth.Tx) error {
			var err error
			n, err = tx.RevokeSession(ctx, root.SessionID, at(2*time.Hour), "again")
			return err
		})
		if n != 0 {
			t.Fatalf("second RevokeSession = %d, want 0", n)
		}
		equal(t, "token after a second revoke", readToken(t, s, tip.TokenHash), tip)
	}},
	{"session revoked reports revocation of the whole session and its owner", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		root := newToken(newID(), at(0))
		insertTokens(t, s, root)
		rotate(t, s, root, at(time.Minute))
		revoked, owner, err := s.SessionRevoked(ctx, root.SessionID)
		must(t, "SessionRevoked", err)
		if revoked {
			t.Fatal("live session reported revoked")
		}
		if owner != root.UserID {
			t.Fatalf("owner = %q, want %q", owner, root.UserID)
		}
		update(t, s, func(tx fluxauth.Tx) error {
			_, err := tx.RevokeSession(ctx, root.SessionID, at(time.Hour), "logout")
			return err
		})
		revoked, owner, err = s.SessionRevoked(ctx, root.SessionID)
		must(t, "SessionRevoked", err)
		if !revoked || owner != root.UserID {
			t.Fatalf("revoked session: revoked %v, owner %q; want true, %q", revoked, owner, root.UserID)
		}
	}},
	{"active sessions are the live unexpired tips, most recently used first", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		user := newID()
		now := at(40 * 24 * time.Hour)

		older := newToken(user, at(20*24*time.Hour)) // used 3 days after it began, below
		newer := newToken(user, at(25*24*time.Hour))
		revoked := newToken(user, at(39*24*time.Hour))
		expired := newToken(user, at(0)) // expires at day 30
		expiresNow := newToken(user, at(10*24*time.Hour))
		expiresNow.ExpiresAt = now
		allSpent := newToken(user, at(38*24*time.Hour))
		allSpent.SpentAt = at(39 * 24 * time.Hour)
		stranger := newToken(newID(), at(39*24*time.Hour))
		// Begun last (the highest session ID), used between the other two: the order is by use,
		// neither by when a session began nor by its ID.
		between := newToken(user, at(30*24*time.Hour))
		insertTokens(t, s, older, newer, revoked, expired, expiresNow, allSpent, stranger, between)

		olderTip := rotate(t, s, older, at(23*24*time.Hour))
		newerTip := rotate(t, s, newer, at(37*24*time.Hour))
		update(t, s, func(tx fluxauth.Tx) error {
			_, err := tx.RevokeSession(ctx, revoked.SessionID, at(39*24*time.Hour+time.Hour), "logout")
			return err
		})

		want := []string{newerTip.ID, between.ID, olderTip.ID}
		got, err := s.ActiveSessions(ctx, user, now)
		must(t, "ActiveSessions", err)
		sameIDs(t, "ActiveSessions", tokenIDs(got), want)
		equal(t, "first active session", got[0], newerTip)
		update(t, s, func(tx fluxauth.Tx) error {
			got, err := tx.ActiveSessions(ctx, user, now)
			must(t, "tx.ActiveSessions", err)
			sameIDs(t, "tx.ActiveSessions", tokenIDs(got), want)
			return nil
		})
		got, err = s.ActiveSessions(ctx, newID(), now)
		must(t, "ActiveSessions of a user without sessions", err)
		if len(got) != 0 {
			t.Fatalf("ActiveSessions of a user without sessions = %v, want none", tokenIDs(got))
		}
	}},
}

var updateTests = []test{
	{"failed update writes nothing and returns fn's error", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		existing := newToken(newID(), at(0))
		insertTokens(t, s, existing)
		u := newUser("ghost@example.com")
		rt := newToken(u.ID, at(time.Minute))
		ev := &fluxauth.SecurityEvent{ID: newID(), Type: fluxauth.EventSignup, Severity: fluxauth.SeverityInfo, UserID: u.ID, CreatedAt: at(0)}
		err := s.Update(ctx, func(tx fluxauth.Tx) error {
			must(t, "CreateUser", tx.CreateUser(ctx, u))
			must(t, "CreateIdentity", tx.CreateIdentity(ctx, &fluxauth.Identity{Provider: "google", Subject: "g", UserID: u.ID, CreatedAt: at(0)}))
			must(t, "InsertRefreshToken", tx.InsertRefreshToken(ctx, rt))
			if ok, err := tx.RotateRefreshToken(ctx, existing.ID, childOf(existing, at(time.Hour)), at(time.Hour)); err != nil || !ok {
				t.Fatalf("RotateRefreshToken: %v %v", ok, err)
			}
			if _, err := tx.RevokeSession(ctx, existing.SessionID, at(time.Hour), "logout"); err != nil {
				t.Fatalf("RevokeSession: %v", err)
			}
			must(t, "InsertEvents", tx.InsertEvents(ctx, ev))
			// Inside the transaction its own writes are visible.
			if _, err := tx.RefreshTokenByHash(ctx, rt.TokenHash); err != nil {
				t.Fatalf("RefreshTokenByHash inside the transaction: %v", err)
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Update = %v, want fn's error", err)
		}
		_, err = s.UserByEmail(ctx, u.Email)
		wantErr(t, "UserByEmail after rollback", err, fluxauth.ErrNotFound)
		_, err = s.IdentityBySubject(ctx, "google", "g")
		wantErr(t, "IdentityBySubject after rollback", err, fluxauth.ErrNotFound)
		_, err = tokenByHash(s, rt.TokenHash)
		wantErr(t, "RefreshTokenByHash after rollback", err, fluxauth.ErrNotFound)
		equal(t, "token changed in the failed update", readToken(t, s, existing.TokenHash), existing)
		evs, err := s.ListEvents(ctx, fluxauth.EventFilter{})
		must(t, "ListEvents", err)
		if len(evs) != 0 {
			t.Fatalf("events after rollback: %v", eventIDs(evs))
		}
	}},
	{"update that panics writes nothing", func(t *testing.T, s fluxauth.Store) {
		ctx := context.Background()
		u := newUser("panic@example.com")
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("Update swallowed the panic")
				}
			}()
			s.Update(ctx, func(tx fluxauth.Tx) error {
				must(t, "CreateUser", tx.CreateUser(ctx, u))
				panic("fn panicked")
			})
		}()
		_, err := s.UserByID(ctx, u.ID)
		wantErr(t, "UserByID after a panicking update", err, fluxauth.ErrNotFound)
		// The store is still usable: the transaction did not leak.
		mustCreateUser(t, s, "after-panic@example.com")
	}},
	{"ping answers on a working store", func(t *testing.T, s fluxauth.Store) {
		must(t, "Ping", s.Ping(context.Background()))
	}},
}
