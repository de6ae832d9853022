package audit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/audit"
)

// memStore keeps the IDs of the events written to it.
type memStore struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (s *memStore) InsertEvents(_ context.Context, events ...*fluxauth.SecurityEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range events {
		s.ids[ev.ID] = true
	}
	return nil
}

func (s *memStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

func (s *memStore) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// An event recorded while, or just after, the recorder closes is either written or refused with
// ErrClosed: never accepted and then lost with Close returning nil.
func TestAnEventRecordedAsTheRecorderClosesIsWrittenOrRefused(t *testing.T) {
	const iterations, recorders = 200, 4
	lost, accepted := 0, 0
	for i := 0; i < iterations; i++ {
		store := &memStore{ids: map[string]bool{}}
		r := audit.New(store, quiet, audit.Config{FlushInterval: time.Hour})
		go r.Run(context.Background())
		// Each goroutine records until the recorder refuses it, so that some Record calls straddle
		// Close.
		recorded := make([][]*fluxauth.SecurityEvent, recorders)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range recorded {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for {
					ev := newEvent(fluxauth.SeverityInfo)
					err := r.Record(context.Background(), ev)
					if err != nil {
						if !errors.Is(err, audit.ErrClosed) {
							t.Errorf("iteration %d: Record: %v, want nil or ErrClosed", i, err)
						}
						return
					}
					recorded[g] = append(recorded[g], ev)
				}
			}()
		}
		close(start)
		time.Sleep(time.Duration(i%5) * 100 * time.Microsecond)
		if err := r.Close(context.Background()); err != nil {
			t.Fatalf("iteration %d: Close: %v", i, err)
		}
		wg.Wait()
		for _, evs := range recorded {
			for _, ev := range evs {
				accepted++
				if !store.has(ev.ID) {
					lost++
				}
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d events accepted (Record returned nil) were never written, though Close returned nil", lost, accepted)
	}
}

// A recorder that never ran writes at Close what was recorded, and then refuses to run.
func TestCloseWithoutRunWritesTheQueuedEvents(t *testing.T) {
	store := &memStore{ids: map[string]bool{}}
	r := audit.New(store, quiet, audit.Config{})
	ev := newEvent(fluxauth.SeverityInfo)
	if err := r.Record(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !store.has(ev.ID) {
		t.Fatal("an event recorded before Close, with Run never called, was not written")
	}
	if err := r.Run(context.Background()); err == nil {
		t.Fatal("Run after Close returned nil, want an error")
	}
}

func TestRunTwiceFails(t *testing.T) {
	r := audit.New(&memStore{ids: map[string]bool{}}, quiet, audit.Config{})
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- r.Run(context.Background()) }()
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var failed int
	for range 2 {
		if <-errs != nil {
			failed++
		}
	}
	if failed < 1 {
		t.Fatal("two Runs of one recorder both returned nil, want an error for the second")
	}
}

// A request whose client has gone (its ctx cancelled) still records what it did: every event is
// queued and written, none refused for its ctx.
func TestAnEventRecordedWithACancelledContextIsWritten(t *testing.T) {
	store := &memStore{ids: map[string]bool{}}
	r := audit.New(store, quiet, audit.Config{FlushInterval: time.Hour})
	go r.Run(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var evs []*fluxauth.SecurityEvent
	for range 50 {
		ev := newEvent(fluxauth.SeverityInfo)
		if err := r.Record(ctx, ev); err != nil {
			t.Fatalf("Record with a cancelled ctx: %v, want nil", err)
		}
		evs = append(evs, ev)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if !store.has(ev.ID) {
			t.Fatalf("event %s recorded with a cancelled ctx was not written", ev.ID)
		}
	}
}
