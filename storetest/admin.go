package storetest

import (
	"context"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

func summarize(tb testing.TB, s Storage, since, now time.Time, topIPs int) *fluxauth.EventSummary {
	tb.Helper()
	sum, err := s.SummarizeEvents(context.Background(), since, now, topIPs)
	must(tb, "SummarizeEvents", err)
	return sum
}

var adminTests = []storageTest{
	{"summary counts the events from since on by type and by severity", func(t *testing.T, s Storage) {
		since := at(time.Hour)
		insertEvents(t, s,
			// Before the window, by the smallest step a store keeps.
			newEvent(fluxauth.EventSessionHijackAttempt, fluxauth.SeverityCritical, "", "", since.Add(-time.Microsecond)),
			newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, "", "", since), // since is inclusive
			newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, "", "", since.Add(time.Minute)),
			newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityInfo, "", "", since.Add(time.Minute)),
			newEvent(fluxauth.EventSignup, fluxauth.SeverityInfo, newID(), "", since.Add(time.Hour)),
			newEvent(fluxauth.EventTokenRevoked, fluxauth.SeverityCritical, newID(), "", since.Add(48*time.Hour)),
		)
		sum := summarize(t, s, since, since, 5)
		if !sum.Since.Equal(since) {
			t.Errorf("Since = %v, want %v", sum.Since, since)
		}
		wantCounts(t, "ByType", sum.ByType, map[string]int{
			fluxauth.EventFailedLogin: 3, fluxauth.EventSignup: 1, fluxauth.EventTokenRevoked: 1,
		})
		wantCounts(t, "BySeverity", sum.BySeverity, map[string]int{
			fluxauth.SeverityWarning: 2, fluxauth.SeverityInfo: 2, fluxauth.SeverityCritical: 1,
		})
	}},
	{"summary of an empty window counts nothing", func(t *testing.T, s Storage) {
		insertEvents(t, s, newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, "", "192.0.2.1", at(0)))
		sum := summarize(t, s, at(time.Hour), at(time.Hour), 5)
		if sum.ByType == nil || sum.BySeverity == nil {
			t.Fatal("the count maps of an empty window are nil, want empty")
		}
		wantCounts(t, "ByType", sum.ByType, map[string]int{})
		wantCounts(t, "BySeverity", sum.BySeverity, map[string]int{})
		if len(sum.TopFailedLoginIPs) != 0 || sum.ActiveSessions != 0 {
			t.Fatalf("top addresses %v, active sessions %d; want none", sum.TopFailedLoginIPs, sum.ActiveSessions)
		}
	}},
	{"top failed-login addresses are the most frequent first, ties by address, at most topIPs", func(t *testing.T, s Storage) {
		since := at(time.Hour)
		const a, b, c, d = "198.51.100.1", "198.51.100.2", "198.51.100.3", "2001:db8::4"
		var evs []*fluxauth.SecurityEvent
		failed := func(ip string, n int, when time.Time) {
			for range n {
				evs = append(evs, newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, "", ip, when))
			}
		}
		failed(a, 3, since)
		failed(c, 2, since.Add(time.Minute)) // inserted before b: the tie must not follow insertion order
		failed(b, 2, since.Add(2*time.Minute))
		failed(d, 1, since.Add(3*time.Minute))
		failed(d, 5, since.Add(-time.Microsecond)) // before the window: d stays last
		failed("", 6, since)                       // failed logins without an address are no address
		for range 7 {                              // other events at an address do not count
			evs = append(evs, newEvent(fluxauth.EventRateLimitExceeded, fluxauth.SeverityWarning, "", "203.0.113.9", since))
		}
		insertEvents(t, s, evs...)

		got := summarize(t, s, since, since, 3).TopFailedLoginIPs
		want := []fluxauth.IPCount{{IP: a, Count: 3}, {IP: b, Count: 2}, {IP: c, Count: 2}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("top 3 = %v, want %v", got, want)
		}
		got = summarize(t, s, since, since, 10).TopFailedLoginIPs
		want = append(want, fluxauth.IPCount{IP: d, Count: 1})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("top 10 = %v, want %v", got, want)
		}
	}},
	{"summary counts the sessions whose live tip has not expired at now", func(t *testing.T, s Storage) {
		now := at(10 * 24 * time.Hour)
		live := newToken(newID(), at(0))       // rotated below: one session, one live tip
		other := newToken(live.UserID, at(0))  // a second session of the same user
		stranger := newToken(newID(), at(0))   // another user's
		revoked := newToken(newID(), at(0))    // revoked below
		expired := newToken(newID(), at(0))    // expired before now
		expiresNow := newToken(newID(), at(0)) // expired at now: no longer live
		allSpent := newToken(newID(), at(0))   // spent, with no successor
		expired.ExpiresAt = now.Add(-time.Second)
		expiresNow.ExpiresAt = now
		allSpent.SpentAt = at(time.Hour)
		insertTokens(t, s, live, other, stranger, revoked, expired, expiresNow, allSpent)
		rotate(t, s, rotate(t, s, live, at(time.Hour)), at(2*time.Hour))
		update(t, s, func(tx fluxauth.Tx) error {
			_, err := tx.RevokeSession(context.Background(), revoked.SessionID, at(time.Hour), "logout")
			return err
		})
		if n := summarize(t, s, at(0), now, 5).ActiveSessions; n != 3 {
			t.Fatalf("ActiveSessions = %d, want 3 (the rotated session, the user's other one, the stranger's)", n)
		}
	}},
}

func wantCounts(tb testing.TB, what string, got, want map[string]int) {
	tb.Helper()
	if !maps.Equal(got, want) {
		tb.Fatalf("%s = %v, want %v", what, got, want)
	}
}
