package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

func newEvent(typ, severity, userID, ip string, when time.Time) *fluxauth.SecurityEvent {
	return &fluxauth.SecurityEvent{
		ID: newID(), Type: typ, Severity: severity, UserID: userID, IPAddress: ip,
		UserAgent: "curl/8.5", CreatedAt: when,
	}
}

func insertEvents(tb testing.TB, s fluxauth.Store, evs ...*fluxauth.SecurityEvent) {
	tb.Helper()
	must(tb, "InsertEvents", s.InsertEvents(context.Background(), evs...))
}

func listEvents(tb testing.TB, s fluxauth.Store, f fluxauth.EventFilter) []*fluxauth.SecurityEvent {
	tb.Helper()
	evs, err := s.ListEvents(context.Background(), f)
	must(tb, "ListEvents", err)
	return evs
}

// newestFirst sorts events as ListEvents must: by CreatedAt then ID, both descending.
func newestFirst(evs []*fluxauth.SecurityEvent) []string {
	s := slices.Clone(evs)
	slices.SortFunc(s, func(a, b *fluxauth.SecurityEvent) int {
		if c := stored(b.CreatedAt).Compare(stored(a.CreatedAt)); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return eventIDs(s)
}

var eventTests = []test{
	{"inserted event reads back with its metadata", func(t *testing.T, s fluxauth.Store) {
		ev := &fluxauth.SecurityEvent{
			ID: newID(), Type: fluxauth.EventDeviceFingerprintMismatch, Severity: fluxauth.SeverityWarning,
			UserID: newID(), TokenID: newID(), IPAddress: "203.0.113.7", UserAgent: "Mozilla/5.0",
			Metadata: map[string]any{
				"expected": "fp-1", "count": float64(3), "trusted": false, "none": nil,
				"nested": map[string]any{"list": []any{"a", float64(1.5)}}, "unicode": "é✓",
			},
			CreatedAt: at(0),
		}
		bare := &fluxauth.SecurityEvent{ID: newID(), Type: fluxauth.EventFailedLogin, Severity: fluxauth.SeverityInfo, CreatedAt: at(time.Second)}
		insertEvents(t, s, ev, bare)
		got := listEvents(t, s, fluxauth.EventFilter{})
		sameIDs(t, "ListEvents", eventIDs(got), []string{bare.ID, ev.ID})
		equal(t, "event without optional fields", got[0], bare)
		equal(t, "event with metadata", got[1], ev)
	}},
	{"events inserted in an update are listed after commit", func(t *testing.T, s fluxauth.Store) {
		a := newEvent(fluxauth.EventTokenRevoked, fluxauth.SeverityInfo, newID(), "", at(0))
		b := newEvent(fluxauth.EventSessionHijackAttempt, fluxauth.SeverityCritical, a.UserID, "", at(time.Second))
		update(t, s, func(tx fluxauth.Tx) error {
			if err := tx.InsertEvents(context.Background()); err != nil {
				return err
			}
			return tx.InsertEvents(context.Background(), a, b)
		})
		sameIDs(t, "ListEvents", eventIDs(listEvents(t, s, fluxauth.EventFilter{})), []string{b.ID, a.ID})
	}},
	{"inserting no events does nothing", func(t *testing.T, s fluxauth.Store) {
		insertEvents(t, s)
		if evs := listEvents(t, s, fluxauth.EventFilter{}); len(evs) != 0 {
			t.Fatalf("events: %v", eventIDs(evs))
		}
	}},
	{"list events applies every filter", func(t *testing.T, s fluxauth.Store) {
		alice, bob := newID(), newID()
		const ip1, ip2 = "198.51.100.1", "2001:db8::2"
		var all []*fluxauth.SecurityEvent
		for i := range 24 {
			typ := []string{fluxauth.EventFailedLogin, fluxauth.EventLoginSuccess, fluxauth.EventRateLimitExceeded}[i%3]
			sev := []string{fluxauth.SeverityInfo, fluxauth.SeverityWarning}[i%2]
			user := []string{alice, bob, ""}[i%3/2+i%2]
			ip := []string{ip1, ip2}[i/12]
			all = append(all, newEvent(typ, sev, user, ip, at(time.Duration(i)*time.Minute)))
		}
		insertEvents(t, s, all...)
		filtered := func(keep func(e *fluxauth.SecurityEvent) bool) []string {
			var out []*fluxauth.SecurityEvent
			for _, e := range all {
				if keep(e) {
					out = append(out, e)
				}
			}
			return newestFirst(out)
		}
		for _, c := range []struct {
			name string
			f    fluxauth.EventFilter
			keep func(e *fluxauth.SecurityEvent) bool
		}{
			{"no filter", fluxauth.EventFilter{}, func(*fluxauth.SecurityEvent) bool { return true }},
			{"type", fluxauth.EventFilter{Type: fluxauth.EventFailedLogin},
				func(e *fluxauth.SecurityEvent) bool { return e.Type == fluxauth.EventFailedLogin }},
			{"severity", fluxauth.EventFilter{Severity: fluxauth.SeverityWarning},
				func(e *fluxauth.SecurityEvent) bool { return e.Severity == fluxauth.SeverityWarning }},
			{"user", fluxauth.EventFilter{UserID: bob}, func(e *fluxauth.SecurityEvent) bool { return e.UserID == bob }},
			{"ip", fluxauth.EventFilter{IP: ip2}, func(e *fluxauth.SecurityEvent) bool { return e.IPAddress == ip2 }},
			{"since is inclusive", fluxauth.EventFilter{Since: at(20 * time.Minute)},
				func(e *fluxauth.SecurityEvent) bool { return !e.CreatedAt.Before(at(20 * time.Minute)) }},
			{"until is exclusive", fluxauth.EventFilter{Until: at(3 * time.Minute)},
				func(e *fluxauth.SecurityEvent) bool { return e.CreatedAt.Before(at(3 * time.Minute)) }},
			{"all together", fluxauth.EventFilter{Type: fluxauth.EventLoginSuccess, Severity: fluxauth.SeverityInfo,
				UserID: alice, IP: ip1, Since: at(time.Minute), Until: at(11 * time.Minute)},
				func(e *fluxauth.SecurityEvent) bool {
					return e.Type == fluxauth.EventLoginSuccess && e.Severity == fluxauth.SeverityInfo && e.UserID == alice &&
						e.IPAddress == ip1 && !e.CreatedAt.Before(at(time.Minute)) && e.CreatedAt.Before(at(11*time.Minute))
				}},
			{"before time", fluxauth.EventFilter{BeforeTime: at(5 * time.Minute)},
				func(e *fluxauth.SecurityEvent) bool { return e.CreatedAt.Before(at(5 * time.Minute)) }},
		} {
			want := filtered(c.keep)
			if len(want) == 0 && c.name != "all together" {
				t.Fatalf("%s: the fixture selects nothing", c.name)
			}
			sameIDs(t, c.name, eventIDs(listEvents(t, s, c.f)), want)
			lim := c.f
			lim.Limit = 2
			sameIDs(t, c.name+" with limit 2", eventIDs(listEvents(t, s, lim)), want[:min(2, len(want))])
		}
		if got := listEvents(t, s, fluxauth.EventFilter{UserID: newID()}); len(got) != 0 {
			t.Fatalf("events of an unknown user: %v", eventIDs(got))
		}
	}},
	{"events at the same time are ordered by id, newest first", func(t *testing.T, s fluxauth.Store) {
		var evs []*fluxauth.SecurityEvent
		for range 6 {
			evs = append(evs, newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityInfo, "", "", at(time.Second)))
		}
		evs = append(evs, newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityInfo, "", "", at(time.Second+time.Microsecond)))
		evs = append(evs, newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityInfo, "", "", at(time.Second-time.Microsecond)))
		insertEvents(t, s, evs...)
		sameIDs(t, "ListEvents", eventIDs(listEvents(t, s, fluxauth.EventFilter{})), newestFirst(evs))
	}},
	{"keyset cursor pages through ties without skipping or repeating", func(t *testing.T, s fluxauth.Store) {
		var evs []*fluxauth.SecurityEvent
		for i := range 17 {
			// Groups of three share a time, so page boundaries fall inside ties.
			evs = append(evs, newEvent(fluxauth.EventLoginSuccess, fluxauth.SeverityInfo, "", "", at(time.Duration(i/3)*time.Second)))
		}
		insertEvents(t, s, evs...)
		got := pageAll(t, s, fluxauth.EventFilter{Limit: 4}, nil)
		sameIDs(t, "pages", got, newestFirst(evs))
	}},
	{"pagination is stable while newer events arrive", func(t *testing.T, s fluxauth.Store) {
		var evs []*fluxauth.SecurityEvent
		for i := range 30 {
			evs = append(evs, newEvent(fluxauth.EventRateLimitExceeded, fluxauth.SeverityWarning, "", "192.0.2.1", at(time.Duration(i/2)*time.Second)))
		}
		insertEvents(t, s, evs...)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			// Newer events keep arriving, at the same IP, during the paging.
			var err error
			for i := 0; ctx.Err() == nil && err == nil; i++ {
				err = s.InsertEvents(ctx, newEvent(fluxauth.EventRateLimitExceeded, fluxauth.SeverityWarning, "", "192.0.2.1", at(time.Hour+time.Duration(i)*time.Millisecond)))
			}
			if ctx.Err() != nil {
				err = nil
			}
			done <- err
		}()
		// The first page is taken after some newer events exist, then the cursor must hold.
		deadline := time.Now().Add(10 * time.Second)
		for {
			first := listEvents(t, s, fluxauth.EventFilter{IP: "192.0.2.1", Limit: 1})
			if len(first) == 1 && !first[0].CreatedAt.Before(at(time.Hour)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no newer event was inserted within 10s")
			}
		}
		got := pageAll(t, s, fluxauth.EventFilter{IP: "192.0.2.1", Limit: 3, BeforeTime: at(time.Hour)}, func() { time.Sleep(time.Millisecond) })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("concurrent InsertEvents: %v", err)
		}
		sameIDs(t, "pages", got, newestFirst(evs))
	}},
}

// pageAll follows the keyset cursor from f to the end and returns every event ID seen.
func pageAll(tb testing.TB, s fluxauth.Store, f fluxauth.EventFilter, between func()) []string {
	tb.Helper()
	var ids []string
	for range 1000 {
		page := listEvents(tb, s, f)
		if len(page) > f.Limit {
			tb.Fatalf("page of %d events with limit %d", len(page), f.Limit)
		}
		ids = append(ids, eventIDs(page)...)
		if len(page) < f.Limit {
			return ids
		}
		last := page[len(page)-1]
		f.BeforeTime, f.BeforeID = last.CreatedAt, last.ID
		if between != nil {
			between()
		}
	}
	tb.Fatal("pagination did not end")
	return nil
}
