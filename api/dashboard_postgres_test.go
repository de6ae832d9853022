package api_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
)

func TestStreamOnOneInstanceSendsEventsCommittedOnAnotherWithinASecond(t *testing.T) {
	a, b := twoInstances(t)
	boss := a.admin(t, "two-boss@example.com")
	s := b.openStream(t, boss.AccessToken, "")
	b.mark(t, s)
	start := time.Now()
	a.failLogin(t, "two-boss@example.com", "203.0.113.30") // recorded and committed by a
	ev := s.next(t, time.Second)
	if ev.Data.EventType != "failed_login" || *ev.Data.IPAddress != "203.0.113.30" {
		t.Fatalf("b's stream got %+v", ev.Data)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a's event reached b's stream after %v", took)
	}
}

func TestAdminActionsOnOneInstanceTakeEffectOnAnotherWithoutRedis(t *testing.T) {
	a, b := twoInstances(t, threeStrikes)
	boss := b.admin(t, "act-boss@example.com")
	user := a.signup(t, "act-user@example.com")
	a.lockOut(t, "act-user@example.com") // counted in a's own limiter only

	if res := b.do(t, "POST", "/api/admin/users/"+user.User.ID+"/unlock", nil, bearer(boss.AccessToken)...); res.Status != 204 {
		t.Fatalf("unlock on b: %d %s", res.Status, res.Body)
	}
	deadline := time.Now().Add(time.Second)
	for *a.adminUser(t, boss.AccessToken, user.User.ID).Lockout.Locked {
		if time.Now().After(deadline) {
			t.Fatal("a still holds the lockout a second after b unlocked the account")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res := a.login(t, "act-user@example.com"); res.Status != 200 {
		t.Fatalf("login on a after the unlock on b: %d %s", res.Status, res.Body)
	}

	// A session revoked on b answers session_revoked on a at once.
	if res := b.do(t, "DELETE", "/api/admin/sessions/"+sidOf(t, user.AccessToken), nil, bearer(boss.AccessToken)...); res.Status != 204 {
		t.Fatalf("revoke on b: %d %s", res.Status, res.Body)
	}
	if res := a.do(t, "GET", "/api/auth/me", nil, bearer(user.AccessToken)...); res.Status != 401 || res.errorCode(t) != "session_revoked" {
		t.Fatalf("the revoked session on a: %d %s", res.Status, res.Body)
	}
}

// TestStreamDeliversAnEventCommittedLateWithALowerSeq holds a transaction that took a seq open while
// a later one commits, as two instances' audit writers can: the live stream and a stream resumed
// from an id taken in between must each send the late event exactly once.
func TestStreamDeliversAnEventCommittedLateWithALowerSeq(t *testing.T) {
	db := postgrestest.MustOpenDB(t)
	e := newEnv(t, withStore(db))
	boss := e.admin(t, "late-boss@example.com")
	live := e.openStream(t, boss.AccessToken, "")
	early := e.openStream(t, boss.AccessToken, "")
	e.mark(t, live, early)

	low := &fluxauth.SecurityEvent{Type: "test_late"}
	inserted, release, committed := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo) // a failure must not leave the transaction holding the database
	go func() {
		committed <- db.Update(context.Background(), func(tx fluxauth.Tx) error {
			if err := tx.InsertEvents(context.Background(), low); err != nil {
				return err
			}
			close(inserted)
			<-release
			return nil
		})
	}()
	<-inserted
	high := &fluxauth.SecurityEvent{Type: "test_early"}
	if err := db.InsertEvents(context.Background(), high); err != nil {
		t.Fatal(err)
	}
	if high.Seq <= low.Seq {
		t.Fatalf("seqs %d then %d: the test needs the held one lower", low.Seq, high.Seq)
	}
	for _, s := range []*sseStream{live, early} {
		if ev := s.next(t, time.Second); ev.Data.ID != high.ID {
			t.Fatalf("got %s, want the committed event", ev.Data.EventType)
		}
	}
	if want := fmt.Sprintf("%d:%d", high.Seq, low.Seq); early.LastID != want {
		t.Fatalf("id with the late seq pending = %q, want %q", early.LastID, want)
	}
	early.Close() // the dashboard goes away with the late event still uncommitted
	// A dashboard that connects while the late event is outstanding gets it too.
	joined := e.openStream(t, boss.AccessToken, "")
	letGo()
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	for _, s := range []*sseStream{live, joined} {
		if ev := s.next(t, time.Second); ev.Data.ID != low.ID {
			t.Fatalf("live stream got %s, want the late event", ev.Data.EventType)
		}
	}
	resumed := e.openStream(t, boss.AccessToken, early.LastID)
	if ev := resumed.next(t, time.Second); ev.Data.ID != low.ID {
		t.Fatalf("resumed stream got %s, want the late event", ev.Data.EventType)
	}
	after := &fluxauth.SecurityEvent{Type: "test_after"}
	if err := db.InsertEvents(context.Background(), after); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*sseStream{live, joined, resumed} {
		if ev := s.next(t, time.Second); ev.Data.ID != after.ID {
			t.Fatalf("got %s (%s) next, want the newest event once and nothing sent twice", ev.Data.EventType, ev.Data.ID)
		}
		s.none(t, 200*time.Millisecond)
	}
}
