package audit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/postgres"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var seq int64
var seqMu sync.Mutex

func newEvent(severity string) *fluxauth.SecurityEvent {
	seqMu.Lock()
	seq++
	n := seq
	seqMu.Unlock()
	return &fluxauth.SecurityEvent{
		ID:   fmt.Sprintf("00000000-0000-7000-8000-%012d", n),
		Type: fluxauth.EventFailedLogin, Severity: severity, IPAddress: "192.0.2.1",
		Metadata: map[string]any{"n": float64(n)}, CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}

func count(tb testing.TB, s fluxauth.EventStore) int {
	tb.Helper()
	n := 0
	f := fluxauth.EventFilter{Limit: 500}
	for {
		page, err := s.ListEvents(context.Background(), f)
		if err != nil {
			tb.Fatal(err)
		}
		n += len(page)
		if len(page) < f.Limit {
			return n
		}
		last := page[len(page)-1]
		f.BeforeTime, f.BeforeID = last.CreatedAt, last.ID
	}
}

func stores(t *testing.T) map[string]func(t *testing.T) fluxauth.Store {
	return map[string]func(t *testing.T) fluxauth.Store{
		"sqlite":   func(t *testing.T) fluxauth.Store { return sqlitetest.MustOpenDB(t) },
		"postgres": func(t *testing.T) fluxauth.Store { return postgrestest.MustOpenDB(t) },
	}
}

func TestEveryEventIsWrittenUnderConcurrentLoadAndShutdownDrains(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			r := audit.New(store, quiet, audit.Config{QueueSize: 256, BatchSize: 100})
			go r.Run(context.Background())
			var wg sync.WaitGroup
			for w := 0; w < 50; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 200; i++ {
						if err := r.Record(context.Background(), newEvent(fluxauth.SeverityWarning)); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := count(t, store); n != 10000 {
				t.Fatalf("%d rows, want 10000", n)
			}
		})
	}
}

func TestCriticalEventsAreWrittenBeforeRecordReturns(t *testing.T) {
	store := sqlitetest.MustOpenDB(t)
	r := audit.New(store, quiet, audit.Config{FlushInterval: time.Hour})
	go r.Run(context.Background())
	defer r.Close(context.Background())
	ev := newEvent(fluxauth.SeverityCritical)
	if err := r.Record(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if n := count(t, store); n != 1 {
		t.Fatalf("critical event not written through: %d rows", n)
	}
}

func TestACancelledRequestStillRecordsItsEvents(t *testing.T) {
	store := sqlitetest.MustOpenDB(t)
	r := audit.New(store, quiet, audit.Config{})
	go r.Run(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Record(ctx, newEvent(fluxauth.SeverityWarning), newEvent(fluxauth.SeverityCritical)); err != nil {
		t.Fatal(err)
	}
	r.Close(context.Background())
	if n := count(t, store); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

func TestSubscribersSeeRecordedEvents(t *testing.T) {
	store := sqlitetest.MustOpenDB(t)
	r := audit.New(store, quiet, audit.Config{FlushInterval: time.Millisecond})
	go r.Run(context.Background())
	ch, cancel := r.Subscribe(10)
	defer cancel()
	ev := newEvent(fluxauth.SeverityInfo)
	r.Record(context.Background(), ev)
	select {
	case got := <-ch:
		if got.ID != ev.ID {
			t.Fatalf("got %s", got.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event reached the subscriber")
	}
	r.Close(context.Background())
}

// A subscriber that falls behind misses events rather than holding up the recorder, and counts
// each one it missed, so that what it reports can say it is incomplete.
func TestASubscriberThatFallsBehindCountsWhatItMissed(t *testing.T) {
	store := sqlitetest.MustOpenDB(t)
	r := audit.New(store, quiet, audit.Config{})
	go r.Run(context.Background())
	defer r.Close(context.Background())
	slow := r.Follow(2)
	defer slow.Close()
	keeping := r.Follow(10)
	defer keeping.Close()
	// Critical events are published before Record returns, so the count is known right after.
	for range 5 {
		if err := r.Record(context.Background(), newEvent(fluxauth.SeverityCritical)); err != nil {
			t.Fatal(err)
		}
	}
	if got := slow.Dropped(); got != 3 {
		t.Fatalf("a subscriber with room for 2 of 5 events counted %d missed, want 3", got)
	}
	if got := keeping.Dropped(); got != 0 {
		t.Fatalf("a subscriber with room for all counted %d missed", got)
	}
	if got := len(slow.C); got != 2 {
		t.Fatalf("%d events buffered, want 2", got)
	}
	slow.Close()
	<-slow.C
	<-slow.C
	if _, open := <-slow.C; open {
		t.Fatal("C still open after Close")
	}
}

func TestDatabaseDownFailsRequestsInsteadOfDroppingEvents(t *testing.T) {
	base := postgrestest.CreateDatabase(t)
	setup, err := postgres.Open(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.MigrateUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	setup.Close()
	proxy := testenv.NewProxy(t, "127.0.0.1:5432")
	store, err := postgres.Open(context.Background(), proxy.URL(base))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r := audit.New(store, quiet, audit.Config{FlushInterval: time.Millisecond, RetryInterval: 20 * time.Millisecond})
	go r.Run(context.Background())

	proxy.Stop()
	queued := newEvent(fluxauth.SeverityWarning)
	if err := r.Record(context.Background(), queued); err != nil {
		t.Fatalf("first event, before the failure is known: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.Record(context.Background(), newEvent(fluxauth.SeverityWarning))
		if errors.Is(err, fluxauth.ErrUnavailable) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("recording never reported the database as unavailable")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Record(context.Background(), newEvent(fluxauth.SeverityCritical)); err == nil {
		t.Fatal("a critical event was accepted while the database is down")
	}

	proxy.Start()
	deadline = time.Now().Add(10 * time.Second)
	for r.Record(context.Background(), newEvent(fluxauth.SeverityWarning)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("recording did not recover")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Close(context.Background())
	evs, err := store.ListEvents(context.Background(), fluxauth.EventFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		found = found || e.ID == queued.ID
	}
	if !found {
		t.Fatal("the event queued while the database was down was lost")
	}
}

// BenchmarkRecord measures what recording adds to a request: enqueueing a warning event while the
// writer batches it into the database behind.
func BenchmarkRecord(b *testing.B) {
	for name, open := range map[string]func(tb testing.TB) fluxauth.Store{
		"sqlite":   func(tb testing.TB) fluxauth.Store { return sqlitetest.MustOpenDB(tb) },
		"postgres": func(tb testing.TB) fluxauth.Store { return postgrestest.MustOpenDB(tb) },
	} {
		b.Run(name, func(b *testing.B) {
			r := audit.New(open(b), quiet, audit.Config{})
			go r.Run(context.Background())
			lat := make([]time.Duration, 0, b.N)
			var mu sync.Mutex
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				local := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					if err := r.Record(context.Background(), newEvent(fluxauth.SeverityWarning)); err != nil {
						b.Error(err)
						return
					}
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
			b.StopTimer()
			r.Close(context.Background())
			sortDurations(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
			}
		})
	}
}

func sortDurations(d []time.Duration) { slices.Sort(d) }

// syncBuffer is a log destination the recorder's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// One event the database refuses for what it holds must not hold the queue: it used to be retried
// forever, and every later request that recorded an event answered 503.
func TestAnEventTheDatabaseRefusesIsSetAsideAndTheRestWritten(t *testing.T) {
	cases := map[string]struct {
		open func(t *testing.T) fluxauth.Store
		bad  func() *fluxauth.SecurityEvent
	}{
		// PostgreSQL refuses invalid UTF-8; the recorder is fed directly, past the account rules
		// that clean header text.
		"postgres, a raw \\xff user agent": {
			open: func(t *testing.T) fluxauth.Store { return postgrestest.MustOpenDB(t) },
			bad: func() *fluxauth.SecurityEvent {
				ev := newEvent(fluxauth.SeverityWarning)
				ev.UserAgent = "secret-ua-\xff"
				return ev
			},
		},
		"sqlite, a duplicate id": {
			open: func(t *testing.T) fluxauth.Store { return sqlitetest.MustOpenDB(t) },
			bad: func() *fluxauth.SecurityEvent {
				ev := newEvent(fluxauth.SeverityWarning)
				ev.ID = "00000000-0000-7000-8000-ffffffffffff"
				return ev
			},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			store := c.open(t)
			logs := &syncBuffer{}
			r := audit.New(store, slog.New(slog.NewTextHandler(logs, nil)), audit.Config{
				BatchSize: 64, FlushInterval: time.Hour, RetryInterval: time.Millisecond,
			})
			go r.Run(context.Background())
			defer r.Close(context.Background())
			if strings.Contains(name, "duplicate") {
				ev := c.bad()
				if err := store.InsertEvents(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
			}
			var good []string
			for i := range 40 {
				ev := newEvent(fluxauth.SeverityWarning)
				good = append(good, ev.ID)
				if err := r.Record(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
				if i == 17 {
					bad := c.bad()
					bad.Metadata = map[string]any{"email": "secret-meta@example.com"}
					if err := r.Record(context.Background(), bad); err != nil {
						t.Fatal(err)
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Flush(ctx); err != nil {
				t.Fatalf("the queue is stuck behind the refused event: %v", err)
			}
			if err := r.Record(context.Background(), newEvent(fluxauth.SeverityWarning)); err != nil {
				t.Fatalf("recording after the refused event: %v", err)
			}
			stored := map[string]bool{}
			evs, err := store.ListEvents(context.Background(), fluxauth.EventFilter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				stored[e.ID] = true
			}
			for _, id := range good {
				if !stored[id] {
					t.Fatalf("event %s, in the batch of the refused one, was not written", id)
				}
			}
			if n := r.SetAside(); n != 1 {
				t.Fatalf("SetAside = %d, want 1", n)
			}
			log := logs.String()
			if !strings.Contains(log, "audit event set aside") || !strings.Contains(log, "00000000-0000-7000-8000-") {
				t.Fatalf("the refused event was not logged by its id:\n%s", log)
			}
			if strings.Contains(log, "secret-") {
				t.Fatalf("the log holds the event's contents:\n%s", log)
			}
		})
	}
}

// hungStore is a database that takes a write and never answers, until the write's context ends.
type hungStore struct{}

func (hungStore) InsertEvents(ctx context.Context, _ ...*fluxauth.SecurityEvent) error {
	<-ctx.Done()
	return fmt.Errorf("%w: postgres: %w", fluxauth.ErrUnavailable, ctx.Err())
}

// A critical event is written while the request waits. The request's own cancellation is dropped
// (its events must survive a client hanging up), and its deadline with it: the write has its own.
func TestACriticalEventWriteGivesUpAtItsOwnDeadlineWithAuditUnavailable(t *testing.T) {
	r := audit.New(hungStore{}, quiet, audit.Config{CriticalTimeout: 50 * time.Millisecond})
	go r.Run(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Record(context.Background(), newEvent(fluxauth.SeverityCritical)) }()
	select {
	case err := <-done:
		if code := fluxauth.ErrorCode(err); code != fluxauth.EAuditUnavailable {
			t.Fatalf("Record against a hung database: %v (code %q), want audit_unavailable", err, code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a critical event write against a hung database did not give up within 5s")
	}
}

// failingStore refuses every write as a database that cannot be reached.
type failingStore struct{}

func (failingStore) InsertEvents(context.Context, ...*fluxauth.SecurityEvent) error {
	return fmt.Errorf("%w: postgres: connection refused", fluxauth.ErrUnavailable)
}

func TestAnAuditLogThatCannotWriteRefusesEventsAsAuditUnavailable(t *testing.T) {
	r := audit.New(failingStore{}, quiet, audit.Config{FlushInterval: time.Millisecond, RetryInterval: 10 * time.Millisecond})
	go r.Run(context.Background())
	defer r.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		err = r.Record(context.Background(), newEvent(fluxauth.SeverityWarning))
		time.Sleep(5 * time.Millisecond)
	}
	if code := fluxauth.ErrorCode(err); code != fluxauth.EAuditUnavailable || !errors.Is(err, fluxauth.ErrUnavailable) {
		t.Fatalf("Record with the audit log failing: %v (code %q), want audit_unavailable wrapping ErrUnavailable", err, code)
	}
	if code := fluxauth.ErrorCode(r.Record(context.Background(), newEvent(fluxauth.SeverityCritical))); code != fluxauth.EAuditUnavailable {
		t.Fatalf("a critical event with the audit log failing: code %q, want audit_unavailable", code)
	}
}

// Shutdown with the database gone: the events still queued cannot be written, and how many there
// are is logged and returned, never dropped silently.
func TestCloseLogsHowManyEventsItCouldNotWriteBeforeItsDeadline(t *testing.T) {
	logs := &syncBuffer{}
	r := audit.New(failingStore{}, slog.New(slog.NewTextHandler(logs, nil)), audit.Config{FlushInterval: time.Hour, RetryInterval: 10 * time.Millisecond})
	go r.Run(context.Background())
	for range 7 {
		if err := r.Record(context.Background(), newEvent(fluxauth.SeverityWarning)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := r.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "7 security events not written") {
		t.Fatalf("Close with the database gone: %v, want the 7 unwritten events counted", err)
	}
	if log := logs.String(); !strings.Contains(log, "security events not written before the shutdown deadline") || !strings.Contains(log, "events=7") {
		t.Fatalf("the unwritten events were not logged with their count:\n%s", log)
	}
	if code := fluxauth.ErrorCode(r.Record(context.Background(), newEvent(fluxauth.SeverityWarning))); code != fluxauth.EAuditUnavailable {
		t.Fatalf("Record after Close: code %q, want audit_unavailable", code)
	}
}

// trackedHungStore is hungStore telling when a write gave up.
type trackedHungStore struct{ returned chan struct{} }

func (s trackedHungStore) InsertEvents(ctx context.Context, _ ...*fluxauth.SecurityEvent) error {
	<-ctx.Done()
	s.returned <- struct{}{}
	return fmt.Errorf("%w: postgres: %w", fluxauth.ErrUnavailable, ctx.Err())
}

// A write hung on a database that stopped answering holds a pool connection, and closing the pool
// waits for it: once Close has given up and counted the events, the write is abandoned.
func TestCloseAbandonsAWriteHungOnTheDatabase(t *testing.T) {
	store := trackedHungStore{returned: make(chan struct{}, 10)}
	r := audit.New(store, quiet, audit.Config{FlushInterval: time.Millisecond})
	go r.Run(context.Background())
	if err := r.Record(context.Background(), newEvent(fluxauth.SeverityWarning)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); err == nil {
		t.Fatal("Close against a hung database reported every event written")
	}
	select {
	case <-store.returned:
	case <-time.After(2 * time.Second):
		t.Fatal("the hung write was still running 2s after Close gave up")
	}
}

// flakyStore refuses the first writes as an unreachable database would, then takes them.
type flakyStore struct {
	*memStore
	mu       sync.Mutex
	refuse   int
	attempts chan struct{}
}

func (s *flakyStore) InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	defer func() { s.attempts <- struct{}{} }()
	s.mu.Lock()
	refuse := s.refuse > 0
	s.refuse--
	s.mu.Unlock()
	if refuse {
		return fmt.Errorf("%w: postgres: connection refused", fluxauth.ErrUnavailable)
	}
	return s.memStore.InsertEvents(ctx, events...)
}

// The batch waits for the flush ticker and a failed write for the retry timer, both on the
// recorder's clock: a warning is written when the clock reaches FlushInterval, and written again,
// after the database refused it, when it reaches RetryInterval more.
func TestTheRecordersFlushAndRetryAreOnItsClock(t *testing.T) {
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	store := &flakyStore{memStore: &memStore{ids: map[string]bool{}}, refuse: 1, attempts: make(chan struct{}, 10)}
	r := audit.New(store, quiet, audit.Config{Clock: clock, FlushInterval: time.Second, RetryInterval: time.Minute})
	go r.Run(context.Background())
	defer r.Close(context.Background())
	start := clock.Now()
	if at := clock.WaitTimers(t, 1); !at[0].Equal(start.Add(time.Second)) {
		t.Fatalf("the flush ticker fires at %v, want FlushInterval from now", at[0])
	}
	if err := r.Record(context.Background(), newEvent(fluxauth.SeverityWarning)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-store.attempts:
		t.Fatal("the batch was written before the clock reached FlushInterval")
	case <-time.After(20 * time.Millisecond):
	}
	clock.Advance(time.Second)
	<-store.attempts // refused
	if at := clock.WaitTimers(t, 2); !slices.Contains(at, clock.Now().Add(time.Minute)) {
		t.Fatalf("timers at %v, want the retry RetryInterval after the refusal", at)
	}
	if n := store.len(); n != 0 {
		t.Fatalf("%d events written while the database refused them", n)
	}
	clock.Advance(time.Minute)
	<-store.attempts
	if n := store.len(); n != 1 {
		t.Fatalf("%d events written after the retry, want 1", n)
	}
}
