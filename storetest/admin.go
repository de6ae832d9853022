package storetest

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

func summarize(tb testing.TB, s fluxauth.Backend, since, now time.Time, topIPs int) *fluxauth.EventSummary {
	tb.Helper()
	sum, err := s.SummarizeEvents(context.Background(), since, now, topIPs)
	must(tb, "SummarizeEvents", err)
	return sum
}

var adminTests = []storageTest{
	{"summary counts the events from since on by type and by severity", func(t *testing.T, s fluxauth.Backend) {
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
	{"summary of an empty window counts nothing", func(t *testing.T, s fluxauth.Backend) {
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
	{"top failed-login addresses are the most frequent first, ties by address, at most topIPs", func(t *testing.T, s fluxauth.Backend) {
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
	{"summary counts the sessions whose live tip has not expired at now", func(t *testing.T, s fluxauth.Backend) {
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

var seriesTests = []storageTest{
	{"series counts each type per step, a bucket's start inclusive and its end exclusive", func(t *testing.T, s fluxauth.Backend) {
		start := t0.UTC().Truncate(time.Minute).Add(time.Hour)
		step := time.Minute
		user := mustCreateUser(t, s, "target@example.com")
		gone := newID()
		insertEvents(t, s,
			newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, user.ID, "198.51.100.1", start.Add(-time.Microsecond)), // before
			newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, user.ID, "198.51.100.1", start),                        // bucket 0
			newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, user.ID, "198.51.100.2", start.Add(step-time.Microsecond)),
			newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, gone, "198.51.100.2", start.Add(step)), // bucket 1
			newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, "", "198.51.100.2", start.Add(2*step+time.Second)),
			newEvent(fluxauth.EventLoginSuccess, fluxauth.SeverityInfo, user.ID, "198.51.100.3", start.Add(2*step+59*time.Second)),
			newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, user.ID, "198.51.100.9", start.Add(3*step)), // after
		)
		live := newToken(user.ID, start)
		insertTokens(t, s, live)
		got, err := s.EventSeries(context.Background(), start, step, 3, start, 5)
		must(t, "EventSeries", err)
		if !got.Start.Equal(start) || got.Step != step || got.Buckets != 3 {
			t.Fatalf("series of %v/%v/%d, want %v/%v/3", got.Start, got.Step, got.Buckets, start, step)
		}
		want := map[string][]int{fluxauth.EventFailedLogin: {2, 1, 1}, fluxauth.EventLoginSuccess: {0, 0, 1}}
		if !reflect.DeepEqual(got.Counts, want) {
			t.Fatalf("Counts = %v, want %v", got.Counts, want)
		}
		wantIPs := []fluxauth.IPCount{{IP: "198.51.100.2", Count: 3}, {IP: "198.51.100.1", Count: 1}}
		if !reflect.DeepEqual(got.TopFailedLoginIPs, wantIPs) {
			t.Fatalf("TopFailedLoginIPs = %v, want %v (the span's failed logins only)", got.TopFailedLoginIPs, wantIPs)
		}
		wantUsers := []fluxauth.UserCount{{UserID: user.ID, Email: user.Email, Count: 2}, {UserID: gone, Count: 1}}
		if !reflect.DeepEqual(got.TopTargetedUsers, wantUsers) {
			t.Fatalf("TopTargetedUsers = %v, want %v", got.TopTargetedUsers, wantUsers)
		}
		if got.ActiveSessions != 1 {
			t.Fatalf("ActiveSessions = %d, want 1", got.ActiveSessions)
		}
		empty, err := s.EventSeries(context.Background(), start.Add(time.Hour), step, 2, start, 5)
		must(t, "EventSeries of a quiet span", err)
		if len(empty.Counts) != 0 || empty.Counts == nil || len(empty.TopFailedLoginIPs) != 0 || len(empty.TopTargetedUsers) != 0 {
			t.Fatalf("quiet span: %+v, want empty counts", empty)
		}
	}},
	{"series refuses steps and starts that are not whole seconds", func(t *testing.T, s fluxauth.Backend) {
		start := t0.UTC().Truncate(time.Second)
		for _, c := range []struct {
			start time.Time
			step  time.Duration
		}{{start, 1500 * time.Millisecond}, {start.Add(time.Millisecond), time.Minute}, {start, 0}} {
			if _, err := s.EventSeries(context.Background(), c.start, c.step, 3, start, 5); err == nil {
				t.Fatalf("EventSeries(%v, %v) succeeded", c.start, c.step)
			}
		}
	}},
}

var userSearchTests = []storageTest{
	{"user search matches a part of the email case-insensitively, wildcards literally, by email, up to the limit", func(t *testing.T, s fluxauth.Backend) {
		for _, email := range []string{"Zoe.Admin@Example.com", "ann_smith@example.com", "annXsmith@example.com", "bob%x@example.org", "ÉLODIE@example.com"} {
			mustCreateUser(t, s, email)
		}
		search := func(q string, limit int) []string {
			users, err := s.SearchUsers(context.Background(), q, limit)
			must(t, "SearchUsers", err)
			var out []string
			for _, u := range users {
				out = append(out, u.Email)
			}
			return out
		}
		for _, c := range []struct {
			q     string
			limit int
			want  []string
		}{
			{"ADMIN@example", 50, []string{"Zoe.Admin@Example.com"}},
			{"ann_", 50, []string{"ann_smith@example.com"}}, // "_" is no wildcard: annXsmith is not found
			{"%x", 50, []string{"bob%x@example.org"}},
			{"%", 50, []string{"bob%x@example.org"}},
			{"élodie", 50, []string{"ÉLODIE@example.com"}},
			{"example.com", 2, []string{"ann_smith@example.com", "annXsmith@example.com"}},
			{"nobody", 50, nil},
		} {
			if got := search(c.q, c.limit); !slices.Equal(got, c.want) {
				t.Errorf("SearchUsers(%q, %d) = %v, want %v", c.q, c.limit, got, c.want)
			}
		}
	}},
	{"a user's identities are listed oldest first, and none for another user or a bad id", func(t *testing.T, s fluxauth.Backend) {
		u := mustCreateUser(t, s, "linked@example.com")
		other := mustCreateUser(t, s, "other@example.com")
		apple := mustCreateIdentity(t, s, u.ID, "apple", "a-1", false)
		google := mustCreateIdentity(t, s, u.ID, "google", "g-1", true)
		mustCreateIdentity(t, s, other.ID, "google", "g-2", true)
		got, err := s.IdentitiesOf(context.Background(), u.ID)
		must(t, "IdentitiesOf", err)
		if len(got) != 2 {
			t.Fatalf("IdentitiesOf = %d identities, want 2", len(got))
		}
		want := []*fluxauth.Identity{apple, google}
		if stored(apple.CreatedAt).After(stored(google.CreatedAt)) {
			want = []*fluxauth.Identity{google, apple}
		}
		equal(t, "first identity", got[0], want[0])
		equal(t, "second identity", got[1], want[1])
		for _, id := range []string{newID(), "not-a-uuid"} {
			none, err := s.IdentitiesOf(context.Background(), id)
			must(t, "IdentitiesOf", err)
			if len(none) != 0 {
				t.Fatalf("IdentitiesOf(%q) = %v, want none", id, none)
			}
		}
	}},
}

func wantCounts(tb testing.TB, what string, got, want map[string]int) {
	tb.Helper()
	if !maps.Equal(got, want) {
		tb.Fatalf("%s = %v, want %v", what, got, want)
	}
}
