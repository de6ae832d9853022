package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

func eventsAfterSeq(tb testing.TB, s fluxauth.Backend, after int64, also []int64, limit int) []*fluxauth.SecurityEvent {
	tb.Helper()
	evs, err := s.EventsAfterSeq(context.Background(), after, also, limit)
	must(tb, "EventsAfterSeq", err)
	return evs
}

func seqs(evs []*fluxauth.SecurityEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func lastEventSeq(tb testing.TB, s fluxauth.Backend) int64 {
	tb.Helper()
	n, err := s.LastEventSeq(context.Background())
	must(tb, "LastEventSeq", err)
	return n
}

var feedTests = []storageTest{
	{"inserted events get increasing seqs in insertion order, whatever their ids and times", func(t *testing.T, s fluxauth.Backend) {
		if n := lastEventSeq(t, s); n != 0 {
			t.Fatalf("LastEventSeq of an empty log = %d, want 0", n)
		}
		// Ids and times that sort the other way round from insertion: seq must not follow them.
		late := newEvent(fluxauth.EventSignup, fluxauth.SeverityInfo, "", "", at(time.Hour))
		late.ID = "ffffffff-ffff-7fff-bfff-ffffffffffff"
		early := newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, "", "", at(0))
		early.ID = "00000000-0000-7000-8000-000000000000"
		insertEvents(t, s, late, early)
		third := newEvent(fluxauth.EventTokenRevoked, fluxauth.SeverityInfo, "", "", at(-time.Hour))
		insertEvents(t, s, third)
		if late.Seq <= 0 || early.Seq <= late.Seq || third.Seq <= early.Seq {
			t.Fatalf("seqs set by InsertEvents: %d, %d, %d; want increasing in insertion order", late.Seq, early.Seq, third.Seq)
		}
		got := eventsAfterSeq(t, s, 0, nil, 10)
		sameIDs(t, "EventsAfterSeq(0)", eventIDs(got), []string{late.ID, early.ID, third.ID})
		if !slices.Equal(seqs(got), []int64{late.Seq, early.Seq, third.Seq}) {
			t.Fatalf("seqs read back %v, want those InsertEvents set", seqs(got))
		}
		equal(t, "event read by seq", got[1], early)
		if n := lastEventSeq(t, s); n != third.Seq {
			t.Fatalf("LastEventSeq = %d, want %d", n, third.Seq)
		}
		listed := listEvents(t, s, fluxauth.EventFilter{})
		if listed[0].Seq != late.Seq {
			t.Fatalf("ListEvents' newest has seq %d, want %d", listed[0].Seq, late.Seq)
		}
	}},
	{"events after a seq are those above it, plus the seqs asked for again, by seq, up to the limit", func(t *testing.T, s fluxauth.Backend) {
		var evs []*fluxauth.SecurityEvent
		for i := range 6 {
			evs = append(evs, newEvent(fluxauth.EventFailedLogin, fluxauth.SeverityWarning, "", "", at(time.Duration(i)*time.Second)))
		}
		insertEvents(t, s, evs...)
		after := evs[3].Seq
		got := eventsAfterSeq(t, s, after, nil, 10)
		sameIDs(t, "after the fourth", eventIDs(got), eventIDs(evs[4:]))
		got = eventsAfterSeq(t, s, after, []int64{evs[1].Seq, evs[0].Seq, evs[5].Seq + 100}, 10)
		sameIDs(t, "after the fourth, and the first two again", eventIDs(got), []string{evs[0].ID, evs[1].ID, evs[4].ID, evs[5].ID})
		got = eventsAfterSeq(t, s, after, []int64{evs[1].Seq}, 2)
		sameIDs(t, "limited to 2, lowest seqs first", eventIDs(got), []string{evs[1].ID, evs[4].ID})
		if got := eventsAfterSeq(t, s, evs[5].Seq, nil, 10); len(got) != 0 {
			t.Fatalf("after the last: %v, want none", eventIDs(got))
		}
	}},
	{"a seq is never handed out again, even after the newest events are deleted", func(t *testing.T, s fluxauth.Backend) {
		old := newEvent(fluxauth.EventSignup, fluxauth.SeverityInfo, "", "", at(0))
		insertEvents(t, s, old)
		if _, err := s.DeleteEventsBefore(context.Background(), at(time.Hour), 10); err != nil {
			t.Fatal(err)
		}
		next := newEvent(fluxauth.EventSignup, fluxauth.SeverityInfo, "", "", at(2*time.Hour))
		insertEvents(t, s, next)
		if next.Seq <= old.Seq {
			t.Fatalf("seq after deleting every event = %d, want above %d: a reader at %d would never see it", next.Seq, old.Seq, old.Seq)
		}
	}},
}
