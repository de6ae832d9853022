package breaker_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/breaker"
	"github.com/fluxstudio/fluxauth/internal/testenv"
)

var errDown = errors.New("connection refused")

// logCount is a slog.Handler counting records by level.
type logCount struct {
	mu     sync.Mutex
	levels map[slog.Level]int
}

func (l *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCount) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.levels == nil {
		l.levels = map[slog.Level]int{}
	}
	l.levels[r.Level]++
	return nil
}
func (l *logCount) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCount) WithGroup(string) slog.Handler      { return l }
func (l *logCount) count(level slog.Level) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.levels[level]
}

func newBreaker(clock *testenv.Clock, logs *logCount) *breaker.Breaker {
	return breaker.New(breaker.Config{Name: "redis", Timeout: 20 * time.Millisecond, Clock: clock, Logger: slog.New(logs)})
}

func fail(context.Context) error    { return errDown }
func succeed(context.Context) error { return nil }

func TestACallThatDoesNotAnswerIsCutAtTheTimeoutAndOpensTheBreaker(t *testing.T) {
	b := newBreaker(testenv.NewClock(time.Now()), &logCount{})
	start := time.Now()
	err := b.Do(context.Background(), "check", func(ctx context.Context) error {
		<-ctx.Done() // a frozen server: nothing comes back
		return ctx.Err()
	})
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("a hung call returned after %v, want about the 20ms timeout", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	if !b.Open() {
		t.Fatal("a timed-out call left the breaker closed")
	}
}

func TestAnOpenBreakerMakesNoCallUntilTheProbeIsDue(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	b := newBreaker(clock, &logCount{})
	b.Do(context.Background(), "check", fail)
	var calls atomic.Int32
	count := func(context.Context) error { calls.Add(1); return errDown }
	for range 100 {
		if err := b.Do(context.Background(), "check", count); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("err %v while open, want ErrOpen", err)
		}
	}
	clock.Advance(breaker.DefaultProbeEvery - time.Millisecond)
	b.Do(context.Background(), "check", count)
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d calls made before the probe was due", n)
	}
	clock.Advance(time.Millisecond)
	b.Do(context.Background(), "check", count)
	b.Do(context.Background(), "check", count)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls once the probe was due, want 1: a failed probe waits another interval", n)
	}
}

func TestOnlyOneCallerProbesAtATime(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	b := newBreaker(clock, &logCount{})
	b.Do(context.Background(), "check", fail)
	clock.Advance(breaker.DefaultProbeEvery)
	release := make(chan struct{})
	probing := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- b.Do(context.Background(), "check", func(context.Context) error {
			close(probing)
			<-release
			return nil
		})
	}()
	<-probing
	var calls atomic.Int32
	for range 50 {
		if err := b.Do(context.Background(), "check", func(context.Context) error { calls.Add(1); return nil }); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("err %v during another caller's probe, want ErrOpen", err)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 0 {
		t.Fatalf("%d calls went through during a probe", calls.Load())
	}
}

func TestASuccessfulProbeClosesTheBreakerAndSaysSoOnce(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	logs := &logCount{}
	b := newBreaker(clock, logs)
	b.Do(context.Background(), "check", fail)
	clock.Advance(breaker.DefaultProbeEvery)
	if err := b.Do(context.Background(), "check", succeed); err != nil {
		t.Fatal(err)
	}
	if b.Open() {
		t.Fatal("still open after a successful probe")
	}
	var calls atomic.Int32
	for range 10 {
		b.Do(context.Background(), "check", func(context.Context) error { calls.Add(1); return nil })
	}
	if calls.Load() != 10 {
		t.Fatalf("%d of 10 calls made after recovery", calls.Load())
	}
	if n := logs.count(slog.LevelInfo); n != 1 {
		t.Fatalf("%d recovery notices, want 1", n)
	}
}

func TestACallerGoingAwayDoesNotOpenTheBreaker(t *testing.T) {
	b := newBreaker(testenv.NewClock(time.Now()), &logCount{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Do(ctx, "check", func(ctx context.Context) error { return ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if b.Open() {
		t.Fatal("a client hanging up opened the breaker")
	}
}

func TestAnOutageIsWarnedAboutOnceAMinute(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	logs := &logCount{}
	b := newBreaker(clock, logs)
	for range 60 { // a failed probe every second for a minute
		b.Do(context.Background(), "check", fail)
		clock.Advance(time.Second)
	}
	if n := logs.count(slog.LevelWarn); n != 1 {
		t.Fatalf("%d warnings in the first minute, want 1", n)
	}
	b.Do(context.Background(), "check", fail)
	if n := logs.count(slog.LevelWarn); n != 2 {
		t.Fatalf("%d warnings after a minute, want 2", n)
	}
}

func TestTryGoesThroughAnOpenBreakerAndItsSuccessClosesIt(t *testing.T) {
	b := newBreaker(testenv.NewClock(time.Now()), &logCount{})
	b.Do(context.Background(), "check", fail)
	called := false
	err := b.Try(context.Background(), "flush", time.Second, func(context.Context) error { called = true; return nil })
	if err != nil || !called {
		t.Fatalf("Try while open: called %v, err %v; want the call made", called, err)
	}
	if b.Open() {
		t.Fatal("a successful Try left the breaker open")
	}
}

func TestARequestsWaitsOnADependencyAddUpAcrossItsCalls(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	b := newBreaker(clock, &logCount{})
	ctx, waits := breaker.WithWaits(context.Background())
	wait := func(d time.Duration) func(context.Context) error {
		return func(context.Context) error { clock.Advance(d); return nil }
	}
	b.Do(ctx, "limit", wait(3*time.Millisecond))
	b.Try(ctx, "announce", time.Second, wait(4*time.Millisecond))
	b.Do(context.Background(), "another request's", wait(time.Second))
	got := map[string]time.Duration{}
	waits.Each(func(name string, d time.Duration) { got[name] = d })
	if len(got) != 1 || got["redis"] != 7*time.Millisecond {
		t.Fatalf("waits %v, want redis: 7ms (this request's two calls, not the other's)", got)
	}

	// A call the open breaker spares waits for nothing, and is not counted as a call.
	b.Do(ctx, "check", func(ctx context.Context) error { clock.Advance(time.Millisecond); return errDown })
	b.Do(ctx, "check", wait(time.Hour))
	waits.Each(func(name string, d time.Duration) { got[name] = d })
	if got["redis"] != 8*time.Millisecond {
		t.Fatalf("waits %v after a failure and a spared call, want redis: 8ms", got)
	}
}
