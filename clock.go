package fluxauth

import "time"

// Clock tells the time and makes the timers every loop waits on, so that tests of expiry, retries
// and schedules move time forward instead of sleeping (internal/testenv.Clock). Its shape follows
// tailscale's tstime.Clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once, d from now.
	NewTimer(d time.Duration) (Timer, <-chan time.Time)
	// NewTicker returns a ticker that sends the time on its channel every d (d > 0), dropping
	// ticks a slow receiver misses, as time.Ticker does.
	NewTicker(d time.Duration) (Ticker, <-chan time.Time)
}

// Timer is a timer from Clock.NewTimer.
type Timer interface {
	// Stop prevents the timer from firing; it reports whether the call stopped it (false once it
	// has fired or been stopped). After Stop no value is received from its channel.
	Stop() bool
}

// Ticker is a ticker from Clock.NewTicker.
type Ticker interface {
	// Stop turns the ticker off; no tick is received after it.
	Stop()
}

// SystemClock is the real clock, in UTC.
type SystemClock struct{}

// Now returns the current UTC time.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// NewTimer returns a time.Timer.
func (SystemClock) NewTimer(d time.Duration) (Timer, <-chan time.Time) {
	t := time.NewTimer(d)
	return t, t.C
}

// NewTicker returns a time.Ticker.
func (SystemClock) NewTicker(d time.Duration) (Ticker, <-chan time.Time) {
	t := time.NewTicker(d)
	return t, t.C
}
