package api_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
)

// endsWithin fails unless the server ends the stream within d.
func (s *sseStream) endsWithin(tb testing.TB, d time.Duration, what string) {
	tb.Helper()
	start := time.Now()
	select {
	case <-s.ended:
	case <-time.After(d):
		tb.Fatalf("the stream is still open %v after %s", d, what)
	}
	tb.Logf("the stream ended %v after %s", time.Since(start), what)
}

// stillOpen fails if the server ends the stream within d.
func (s *sseStream) stillOpen(tb testing.TB, d time.Duration) {
	tb.Helper()
	select {
	case <-s.ended:
		tb.Fatal("the stream ended early")
	case <-time.After(d):
	}
}

func TestStreamEndsWithinASecondOfItsSessionsLogout(t *testing.T) {
	e := newEnv(t)
	boss := e.admin(t, "stream-logout@example.com")
	var second authResponse
	e.login(t, "stream-logout@example.com").json(t, &second)
	other := e.openStream(t, second.AccessToken, "") // another session of the same admin
	s := e.openStream(t, boss.AccessToken, "")
	e.mark(t, s, other)
	if res := e.do(t, "POST", "/api/auth/logout", nil, bearer(boss.AccessToken)...); res.Status != 204 {
		t.Fatalf("logout: %d %s", res.Status, res.Body)
	}
	s.endsWithin(t, time.Second, "the logout's answer")
	other.stillOpen(t, 200*time.Millisecond) // the admin's other session is not ended
}

func TestStreamEndsWhenItsUserIsDemoted(t *testing.T) {
	db := postgrestest.MustOpenDB(t) // as in production: the CLI's commit reaches the feed by NOTIFY
	e := newEnv(t, withStore(db))
	boss := e.admin(t, "stream-demoted@example.com")
	peer := e.admin(t, "stream-peer@example.com")
	s := e.openStream(t, boss.AccessToken, "")
	ps := e.openStream(t, peer.AccessToken, "")
	e.mark(t, s, ps)
	// What "fluxauth users set-type stream-demoted@example.com client" does.
	err := db.Update(context.Background(), func(tx fluxauth.Tx) error {
		if _, err := tx.LockUser(context.Background(), boss.User.ID); err != nil {
			return err
		}
		if err := tx.SetUserType(context.Background(), boss.User.ID, "client", e.Clock.Now()); err != nil {
			return err
		}
		return tx.InsertEvents(context.Background(), &fluxauth.SecurityEvent{
			ID: uuid.NewString(), Type: fluxauth.EventUserTypeChanged, Severity: fluxauth.SeverityInfo, UserID: boss.User.ID,
			Metadata: map[string]any{"by": "cli:test", "from": "admin", "to": "client"}, CreatedAt: e.Clock.Now(),
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.endsWithin(t, time.Second, "the demotion's commit")
	ps.stillOpen(t, 200*time.Millisecond) // another admin's stream goes on
	if res := e.do(t, "GET", "/api/admin/security/stream", nil, bearer(boss.AccessToken)...); res.Status != 403 {
		t.Fatalf("the demoted admin reconnecting: %d %s", res.Status, res.Body)
	}
}

func TestStreamEndsAtItsAccessTokensExpiry(t *testing.T) {
	e := newEnv(t)
	boss := e.admin(t, "stream-expiry@example.com")
	exp := time.Unix(claimsOf(t, boss.AccessToken).Exp, 0)
	s := e.openStream(t, boss.AccessToken, "")
	e.mark(t, s)
	// The stream's timer is armed for exp on the service's clock.
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(e.Clock.WaitTimers(t, 0), func(at time.Time) bool { return at.Equal(exp) }) {
		if time.Now().After(deadline) {
			t.Fatalf("no timer armed for the token's exp %v", exp)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.Clock.Advance(exp.Sub(e.Clock.Now()) - time.Second)
	s.stillOpen(t, 200*time.Millisecond)
	e.Clock.Advance(2 * time.Second)
	s.endsWithin(t, time.Second, "the clock passed exp")
}

func TestStreamEndsWhenAnotherInstanceRevokesItsSession(t *testing.T) {
	prefix := "fluxauth-test:" + uuid.NewString() + ":"
	a, b := twoInstances(t, withRedis(testenv.RedisURL(t), prefix))
	boss := a.admin(t, "stream-two@example.com")
	s := b.openStream(t, boss.AccessToken, "")
	b.mark(t, s)
	if res := a.do(t, "POST", "/api/auth/logout", nil, bearer(boss.AccessToken)...); res.Status != 204 {
		t.Fatalf("logout on a: %d %s", res.Status, res.Body)
	}
	s.endsWithin(t, time.Second, "a's logout answer")
}
