package testenv

import (
	"sync"
	"time"
)

// Clock is a settable clock for tests of expiry, grace windows and retention without sleeping.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at t (UTC, microsecond precision as the stores keep).
func NewClock(t time.Time) *Clock { return &Clock{now: t.UTC().Truncate(time.Microsecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
