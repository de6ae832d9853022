package feed_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/feed"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// countingStore counts the feed's reads.
type countingStore struct {
	fluxauth.Store
	fluxauth.EventFeedStore
	reads atomic.Int64
}

func (s *countingStore) EventsAfterSeq(ctx context.Context, after int64, also []int64, limit int) ([]*fluxauth.SecurityEvent, error) {
	s.reads.Add(1)
	return s.EventFeedStore.EventsAfterSeq(ctx, after, also, limit)
}

func startHub(t *testing.T, cfg feed.Config, react map[string]func(context.Context, *fluxauth.SecurityEvent)) (*feed.Hub, *countingStore) {
	t.Helper()
	db := sqlitetest.MustOpenDB(t)
	store := &countingStore{Store: db, EventFeedStore: db}
	hub := feed.New(store, fluxauth.SystemClock{}, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	for typ, fn := range react {
		hub.React(typ, fn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; hub.Close() })
	return hub, store
}

func subscribe(t *testing.T, hub *feed.Hub) *feed.Subscription {
	t.Helper()
	s, err := hub.Subscribe(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func insert(t *testing.T, s fluxauth.Store, n int, typ string) {
	t.Helper()
	evs := make([]*fluxauth.SecurityEvent, n)
	for i := range evs {
		evs[i] = &fluxauth.SecurityEvent{Type: typ, UserID: "u"}
	}
	if err := s.InsertEvents(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
}

// receive reads n events from s, each accepted once, failing after wait.
func receive(t *testing.T, s *feed.Subscription, n int, wait time.Duration) []int64 {
	t.Helper()
	var seqs []int64
	timeout := time.After(wait)
	for len(seqs) < n {
		select {
		case e, ok := <-s.C():
			if !ok {
				t.Fatalf("subscription closed after %d of %d events", len(seqs), n)
			}
			if _, ok := s.Accept(e.SecurityEvent); ok {
				seqs = append(seqs, e.Seq)
			}
		case <-timeout:
			t.Fatalf("%d of %d events within %v", len(seqs), n, wait)
		}
	}
	return seqs
}

func TestHubReadsOnceAWakeForEverySubscriber(t *testing.T) {
	hub, store := startHub(t, feed.Config{}, nil)
	subs := make([]*feed.Subscription, 20)
	for i := range subs {
		subs[i] = subscribe(t, hub)
	}
	before := store.reads.Load()
	insert(t, store, 50, fluxauth.EventFailedLogin)
	hub.Wake()
	for _, s := range subs {
		if seqs := receive(t, s, 50, time.Second); seqs[0] >= seqs[49] {
			t.Fatalf("events out of seq order: %v", seqs)
		}
	}
	if n := store.reads.Load() - before; n != 1 {
		t.Fatalf("%d reads for one wake and 20 subscribers, want 1", n)
	}
}

func TestHubDropsASubscriberThatFallsBehindWithoutHoldingTheOthers(t *testing.T) {
	hub, store := startHub(t, feed.Config{Buffer: 4}, nil)
	slow, fast := subscribe(t, hub), subscribe(t, hub)
	for range 10 {
		insert(t, store, 1, fluxauth.EventFailedLogin)
		hub.Wake()
		receive(t, fast, 1, time.Second)
	}
	var kept int
	for range slow.C() {
		kept++
	}
	if !slow.Dropped() || kept != 4 {
		t.Fatalf("slow subscriber: dropped %v after %d buffered events; want dropped after 4", slow.Dropped(), kept)
	}
	if hub.Subscribers() != 1 {
		t.Fatalf("%d subscribers left, want the fast one", hub.Subscribers())
	}
}

func TestHubReactsOnceToEachEventOfTheType(t *testing.T) {
	var mu sync.Mutex
	var seen []int64
	hub, store := startHub(t, feed.Config{}, map[string]func(context.Context, *fluxauth.SecurityEvent){
		fluxauth.EventAccountUnlocked: func(_ context.Context, e *fluxauth.SecurityEvent) {
			mu.Lock()
			seen = append(seen, e.Seq)
			mu.Unlock()
		},
	})
	s := subscribe(t, hub)
	insert(t, store, 2, fluxauth.EventAccountUnlocked)
	insert(t, store, 1, fluxauth.EventFailedLogin)
	for range 5 {
		hub.Wake()
	}
	receive(t, s, 3, time.Second)
	insert(t, store, 1, fluxauth.EventFailedLogin) // a later read must not run them again
	hub.Wake()
	receive(t, s, 1, time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Fatalf("reactions ran for %v, want each of the 2 unlocks once", seen)
	}
}

func TestClosedHubEndsSubscriptionsAndRefusesNewOnes(t *testing.T) {
	hub, _ := startHub(t, feed.Config{}, nil)
	s := subscribe(t, hub)
	hub.Close()
	if _, ok := <-s.C(); ok || s.Dropped() {
		t.Fatal("subscription still open, or counted as dropped, after Close")
	}
	if _, err := hub.Subscribe(context.Background(), ""); !errors.Is(err, feed.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

func TestHubReadsABurstLargerThanABatchOnOneWake(t *testing.T) {
	hub, store := startHub(t, feed.Config{Batch: 10}, nil)
	s := subscribe(t, hub)
	insert(t, store, 45, fluxauth.EventFailedLogin)
	hub.Wake() // once: the hub must not wait for another commit to read the rest
	receive(t, s, 45, time.Second)
}

// flakyStore fails the feed's first reads of the log's end and of new events, as a database that
// is briefly down.
type flakyStore struct {
	fluxauth.EventFeedStore
	lastFailures, readFailures atomic.Int64
}

var errDown = errors.New("database down")

func (s *flakyStore) LastEventSeq(ctx context.Context) (int64, error) {
	if s.lastFailures.Add(-1) >= 0 {
		return 0, errDown
	}
	return s.EventFeedStore.LastEventSeq(ctx)
}

func (s *flakyStore) EventsAfterSeq(ctx context.Context, after int64, also []int64, limit int) ([]*fluxauth.SecurityEvent, error) {
	if s.readFailures.Add(-1) >= 0 {
		return nil, errDown
	}
	return s.EventFeedStore.EventsAfterSeq(ctx, after, also, limit)
}

func TestHubRetriesAFailedReadAfterItsRetryInterval(t *testing.T) {
	db := sqlitetest.MustOpenDB(t)
	store := &flakyStore{EventFeedStore: db}
	store.lastFailures.Store(1)
	store.readFailures.Store(1)
	clock := testenv.NewClock(time.Now())
	const retry = 3 * time.Second
	hub := feed.New(store, clock, slog.New(slog.DiscardHandler), feed.Config{RetryInterval: retry})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; hub.Close() })

	// Finding where the log ends failed: the hub waits retry before asking again.
	if at := clock.WaitTimers(t, 1); !at[0].Equal(clock.Now().Add(retry)) {
		t.Fatalf("after a failed start the hub retries at %v, want %v", at[0], clock.Now().Add(retry))
	}
	clock.Advance(retry)
	s := subscribe(t, hub) // returns once the hub has started

	insert(t, db, 1, "failed_login")
	hub.Wake()
	if at := clock.WaitTimers(t, 1); !at[0].Equal(clock.Now().Add(retry)) {
		t.Fatalf("after a failed read the hub retries at %v, want %v", at[0], clock.Now().Add(retry))
	}
	clock.Advance(retry - time.Microsecond)
	select {
	case e := <-s.C():
		t.Fatalf("event %d delivered before the retry", e.Seq)
	default:
	}
	clock.Advance(time.Microsecond)
	receive(t, s, 1, 10*time.Second)
}

// On a database without notifications the hub still delivers, within PollEvery on its clock, an
// event another process wrote (as "fluxauth users set-type" does beside a serving SQLite instance).
func TestHubPollsADatabaseWithoutNotificationsForOtherProcessesEvents(t *testing.T) {
	db := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	const poll = 2 * time.Second
	hub := feed.New(db, clock, slog.New(slog.DiscardHandler), feed.Config{PollEvery: poll})
	recorder := audit.New(db, slog.New(slog.DiscardHandler), audit.Config{Clock: clock})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); hub.Run(ctx) }()
	go func() { defer wg.Done(); hub.Listen(ctx, db, recorder) }()
	t.Cleanup(func() { cancel(); wg.Wait(); hub.Close(); recorder.Close(context.Background()) })
	s := subscribe(t, hub)

	if at := clock.WaitTimers(t, 1); !slices.Contains(at, clock.Now().Add(poll)) {
		t.Fatalf("timers at %v, want the poll at %v", at, clock.Now().Add(poll))
	}
	insert(t, db, 1, fluxauth.EventUserTypeChanged) // written by another process: no recorder saw it
	select {
	case e := <-s.C():
		t.Fatalf("event %d delivered before the poll", e.Seq)
	default:
	}
	clock.Advance(poll)
	receive(t, s, 1, 10*time.Second)
}

// A client's cursor beyond the end of the log (another database's) starts where the hub was when it
// subscribed: an event the hub delivers between Subscribe and CatchUp is still sent, once, rather
// than taken for one the client saw.
func TestAFutureCursorKeepsTheEventsDeliveredBeforeItsCatchUp(t *testing.T) {
	hub, store := startHub(t, feed.Config{}, nil)
	subscribe(t, hub) // waits until the hub has started
	s, err := hub.Subscribe(context.Background(), "999999")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	insert(t, store, 1, fluxauth.EventFailedLogin)
	hub.Wake()
	var ev *feed.Event
	select {
	case ev = <-s.C():
	case <-time.After(10 * time.Second):
		t.Fatal("the hub delivered nothing")
	}
	sent := 0
	if err := s.CatchUp(context.Background(), func(e *feed.Event, id string) error {
		sent++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Accept(ev.SecurityEvent); ok {
		sent++
	}
	if sent != 1 {
		t.Fatalf("event %d sent %d times, want once", ev.Seq, sent)
	}
}
