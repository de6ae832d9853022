package testenv

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// Clock is a settable fluxauth.Clock for tests of expiry, grace windows, retention and schedules
// without sleeping: its timers and tickers fire when Advance reaches their deadline, and
// WaitTimers tells a test when a loop has armed the timer it waits on.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	armed   []*fakeTimer
	changed chan struct{} // closed, and replaced, whenever a timer is armed
}

var _ fluxauth.Clock = (*Clock)(nil)

// NewClock returns a clock stopped at t (UTC, microsecond precision as the stores keep).
func NewClock(t time.Time) *Clock {
	return &Clock{now: t.UTC().Truncate(time.Microsecond), changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d, then fires every timer and ticker due by then, soonest
// first. A ticker fires once however many of its periods d spans: like time.Ticker, it drops the
// ticks its receiver could not have taken.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	slices.SortStableFunc(c.armed, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	kept := c.armed[:0]
	for _, t := range c.armed {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.send(t.at)
		if t.every > 0 {
			for !t.at.After(c.now) {
				t.at = t.at.Add(t.every)
			}
			kept = append(kept, t)
		}
	}
	clear(c.armed[len(kept):])
	c.armed = kept
}

// NewTimer returns a timer that fires when the clock reaches d from now (at once when d <= 0).
func (c *Clock) NewTimer(d time.Duration) (fluxauth.Timer, <-chan time.Time) {
	t := &fakeTimer{clock: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.at = c.now.Add(d)
	if d <= 0 {
		t.send(c.now)
		return t, t.ch
	}
	c.arm(t)
	return t, t.ch
}

// NewTicker returns a ticker that fires each time the clock passes another d from now.
func (c *Clock) NewTicker(d time.Duration) (fluxauth.Ticker, <-chan time.Time) {
	if d <= 0 {
		panic("testenv: non-positive interval for NewTicker")
	}
	t := &fakeTimer{clock: c, every: d, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.at = c.now.Add(d)
	c.arm(t)
	return fakeTicker{t}, t.ch
}

func (c *Clock) arm(t *fakeTimer) {
	c.armed = append(c.armed, t)
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitTimersBound only keeps a test whose loop never arms its timer from hanging until go test's
// own timeout; arming one takes microseconds, however busy the machine.
const waitTimersBound = time.Minute

// WaitTimers waits until at least n timers and tickers are armed and returns their deadlines,
// soonest first. A timer that fired or was stopped no longer counts, so after an Advance that fired
// a loop's timer, WaitTimers(tb, 1) returns once the loop has done its work and armed the next one.
// A ticker stays armed until stopped.
func (c *Clock) WaitTimers(tb testing.TB, n int) []time.Time {
	tb.Helper()
	bound := time.NewTimer(waitTimersBound)
	defer bound.Stop()
	for {
		c.mu.Lock()
		if len(c.armed) >= n {
			at := make([]time.Time, len(c.armed))
			for i, t := range c.armed {
				at[i] = t.at
			}
			c.mu.Unlock()
			slices.SortFunc(at, time.Time.Compare)
			return at
		}
		changed := c.changed
		have := len(c.armed)
		c.mu.Unlock()
		select {
		case <-changed:
		case <-bound.C:
			tb.Fatalf("%d timers armed after %s, want %d: the loop is not waiting on the clock", have, waitTimersBound, n)
		}
	}
}

// fakeTimer is a timer or, with every set, a ticker of a Clock.
type fakeTimer struct {
	clock *Clock
	at    time.Time
	every time.Duration
	ch    chan time.Time
}

// send delivers a tick unless the last one is still unreceived.
func (t *fakeTimer) send(at time.Time) {
	select {
	case t.ch <- at:
	default:
	}
}

// Stop disarms the timer and discards a tick not yet received.
func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.armed, t)
	if i >= 0 {
		c.armed = slices.Delete(c.armed, i, i+1)
	}
	select {
	case <-t.ch:
	default:
	}
	return i >= 0
}

// fakeTicker is fakeTimer as a fluxauth.Ticker, whose Stop returns nothing.
type fakeTicker struct{ *fakeTimer }

func (t fakeTicker) Stop() { t.fakeTimer.Stop() }
