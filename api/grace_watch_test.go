package api_test

import (
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
)

// The owner is the test client (Go's User-Agent, 127.0.0.1); the thief copied one of its refresh
// tokens and presents it from another browser on another network.
var thief = []string{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Thief/1.0", "X-Forwarded-For", "203.0.113.5"}

// eventsWhere returns the events of type typ whose metadata has key set to value.
func (e *env) eventsWhere(tb testing.TB, typ, key string, value any) []*fluxauth.SecurityEvent {
	tb.Helper()
	var out []*fluxauth.SecurityEvent
	for _, ev := range e.events(tb, typ) {
		if ev.Metadata[key] == value {
			out = append(out, ev)
		}
	}
	return out
}

// otherClientEvents returns the suspicious_token_usage events recorded with the reason.
func (e *env) otherClientEvents(tb testing.TB, reason string) []*fluxauth.SecurityEvent {
	tb.Helper()
	return e.eventsWhere(tb, fluxauth.EventSuspiciousTokenUsage, "reason", reason)
}

// graceHit presents spent within the grace window with headers and checks the answer is the
// session's live token, as for any racing tab.
func (e *env) graceHit(tb testing.TB, spent, live string, headers ...string) {
	tb.Helper()
	res := e.refresh(tb, spent, headers...)
	if res.Status != 200 {
		tb.Fatalf("grace hit: %d %s", res.Status, res.Body)
	}
	var ar authResponse
	res.json(tb, &ar)
	if ar.RefreshToken != live {
		tb.Fatal("the grace hit did not get the session's live token")
	}
}

func TestGraceHitsFromAnotherClientAreRecordedOncePerSessionAndClient(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "followed@example.com")
	owner := e.mustRefresh(t, ar.RefreshToken)
	e.Clock.Advance(2 * time.Second)
	e.graceHit(t, ar.RefreshToken, owner.RefreshToken, thief...)
	evs := e.otherClientEvents(t, "grace_other_client")
	if len(evs) != 1 || evs[0].Severity != fluxauth.SeverityWarning || evs[0].UserID != ar.User.ID ||
		evs[0].Metadata["sessionId"] != sidOf(t, ar.AccessToken) || evs[0].IPAddress != "203.0.113.5" {
		t.Fatalf("after the thief's grace hit: %+v", evs)
	}

	// The owner rotates again and the thief follows again: still one event.
	spent := owner.RefreshToken
	owner = e.mustRefresh(t, spent)
	e.graceHit(t, spent, owner.RefreshToken, thief...)
	// The owner's User-Agent from another network, and another User-Agent from the owner's /24
	// (a second tab; a phone on the same Wi-Fi): the owner's own clients, not recorded.
	spent = owner.RefreshToken
	owner = e.mustRefresh(t, spent)
	e.graceHit(t, spent, owner.RefreshToken, "X-Forwarded-For", "198.51.100.7")
	e.graceHit(t, spent, owner.RefreshToken, "User-Agent", "Mozilla/5.0 (iPhone) Other/2.0", "X-Forwarded-For", "127.0.0.200")
	if evs := e.otherClientEvents(t, "grace_other_client"); len(evs) != 1 {
		t.Fatalf("%d grace_other_client events, want the thief's first one only", len(evs))
	}
	if n := len(e.events(t, fluxauth.EventSessionHijackAttempt)); n != 0 {
		t.Fatalf("%d hijack events: the answers changed", n)
	}
}

func TestReissueForAnotherClientIsRecorded(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "reissued@example.com")
	lost := e.mustRefresh(t, ar.RefreshToken) // the owner's answer, never used
	e.Clock.Advance(time.Minute)
	e.graceHit(t, ar.RefreshToken, lost.RefreshToken, thief...) // past grace: the same successor again
	if evs := e.otherClientEvents(t, "reissue_other_client"); len(evs) != 1 {
		t.Fatalf("%d reissue_other_client events, want 1", len(evs))
	}
}

func TestGraceHitsFromAnotherClientAreNotRecordedWhenTurnedOff(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) { c.Account.WatchGraceClients = false }))
	ar := e.signup(t, "unwatched@example.com")
	owner := e.mustRefresh(t, ar.RefreshToken)
	e.graceHit(t, ar.RefreshToken, owner.RefreshToken, thief...)
	if evs := e.otherClientEvents(t, "grace_other_client"); len(evs) != 0 {
		t.Fatalf("recorded with the rule off: %+v", evs)
	}
}

func TestParallelGraceHitsFromAnotherClientRecordOneEvent(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "parallel-thief@example.com")
	owner := e.mustRefresh(t, ar.RefreshToken)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.graceHit(t, ar.RefreshToken, owner.RefreshToken, thief...)
		}()
	}
	wg.Wait()
	if evs := e.otherClientEvents(t, "grace_other_client"); len(evs) != 1 {
		t.Fatalf("%d grace_other_client events from two parallel hits, want 1", len(evs))
	}
}

func TestGraceHitsFromAnotherClientOnTwoInstancesRecordOneEvent(t *testing.T) {
	a, b := twoInstances(t) // no Redis: the mark is the shared database's
	ar := a.signup(t, "two-thief@example.com")
	owner := a.mustRefresh(t, ar.RefreshToken)
	a.graceHit(t, ar.RefreshToken, owner.RefreshToken, thief...)
	b.graceHit(t, ar.RefreshToken, owner.RefreshToken, thief...)
	a.events(t, fluxauth.EventSuspiciousTokenUsage) // flush a's recorder too
	if evs := b.otherClientEvents(t, "grace_other_client"); len(evs) != 1 {
		t.Fatalf("%d grace_other_client events from the thief on two instances, want 1", len(evs))
	}
}
