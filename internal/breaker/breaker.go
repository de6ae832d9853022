// Package breaker is the one resilience policy fluxauth applies to a dependency it can do without
// for a while (Redis, whose callers fall back to the process's memory or to the database):
//
//   - Timeout: every call is bounded, so a dependency that stops answering (a partition, a frozen
//     process) costs a caller at most Timeout, never the client library's own read timeouts.
//   - Breaker: a failed call opens the breaker. While it is open, calls are not made at all: Do
//     returns ErrOpen at once and the caller answers from its fallback, so an outage does not cost
//     every request a timeout.
//   - Probe: while open, one call every ProbeEvery is let through (one caller at a time), to find
//     out whether the dependency answers again.
//   - Recovery: a call that succeeds closes the breaker; from then on every call is made again.
//
// The rate limiter and the revocation list share one Breaker for their one Redis client: whichever
// notices an outage first spares the other its timeout too, and readiness reports one state.
package breaker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one call. On loopback Redis answers in well under a millisecond; past a
	// few tens of milliseconds it is effectively down for a request, which should not wait for it.
	DefaultTimeout = 25 * time.Millisecond
	// DefaultProbeEvery is how often an open breaker lets one call through.
	DefaultProbeEvery = time.Second
	// DefaultWarnEvery throttles the "unavailable" warning, so an outage under load does not flood
	// the logs.
	DefaultWarnEvery = time.Minute
)

// ErrOpen is returned by Do, without calling its function, while the breaker is open.
var ErrOpen = errors.New("breaker: open")

// Config configures a Breaker; zero fields take the defaults named.
type Config struct {
	// Name is the dependency in log lines, e.g. "redis".
	Name string
	// Fallback says, in the warning, what callers do while the breaker is open.
	Fallback   string
	Timeout    time.Duration  // DefaultTimeout
	ProbeEvery time.Duration  // DefaultProbeEvery
	WarnEvery  time.Duration  // DefaultWarnEvery
	Clock      fluxauth.Clock // fluxauth.SystemClock
	Logger     *slog.Logger   // discards
}

// Breaker guards the calls to one dependency. Build it with New; it is safe for concurrent use.
type Breaker struct {
	cfg Config

	open      atomic.Bool
	nextProbe atomic.Int64 // unix nanoseconds; only read while open
	probing   atomic.Bool  // one caller at a time probes

	warnMu   sync.Mutex
	lastWarn time.Time
}

// New returns a closed breaker.
func New(c Config) *Breaker {
	if c.Name == "" {
		c.Name = "dependency"
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ProbeEvery <= 0 {
		c.ProbeEvery = DefaultProbeEvery
	}
	if c.WarnEvery <= 0 {
		c.WarnEvery = DefaultWarnEvery
	}
	if c.Clock == nil {
		c.Clock = fluxauth.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Breaker{cfg: c}
}

// Timeout is the bound Do puts on each call.
func (b *Breaker) Timeout() time.Duration { return b.cfg.Timeout }

// Open reports whether the last call failed, so that callers are using their fallback. Readiness
// reports it as degraded.
func (b *Breaker) Open() bool { return b.open.Load() }

// Do calls fn with ctx bounded by Timeout, unless the breaker is open and it is not yet time for a
// probe, or another caller is probing: then it returns ErrOpen without calling fn. op names the call
// in the warning. A failure of fn opens the breaker, except when ctx itself has ended (the caller
// went away, which says nothing about the dependency): Do then returns ctx's error.
func (b *Breaker) Do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if b.open.Load() {
		if b.cfg.Clock.Now().UnixNano() < b.nextProbe.Load() || !b.probing.CompareAndSwap(false, true) {
			return ErrOpen
		}
		defer b.probing.Store(false)
	}
	return b.call(ctx, op, b.cfg.Timeout, fn)
}

// Try calls fn with ctx bounded by timeout whatever the breaker's state, for work off the request
// path that must be attempted and may take longer by nature (re-announcing a backlog, the last
// attempt at shutdown). Its outcome opens or closes the breaker like any call's.
func (b *Breaker) Try(ctx context.Context, op string, timeout time.Duration, fn func(ctx context.Context) error) error {
	return b.call(ctx, op, timeout, fn)
}

func (b *Breaker) call(ctx context.Context, op string, timeout time.Duration, fn func(ctx context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	start := b.cfg.Clock.Now()
	err := fn(cctx)
	if w, ok := ctx.Value(waitsKey{}).(*Waits); ok {
		w.add(b.cfg.Name, b.cfg.Clock.Now().Sub(start))
	}
	cancel()
	if err == nil {
		if b.open.CompareAndSwap(true, false) {
			b.cfg.Logger.InfoContext(ctx, b.cfg.Name+": answers again", "op", op)
		}
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.trip(ctx, op, err)
	return err
}

// trip opens the breaker until the next probe and warns, at most once per WarnEvery. The error names
// the operation and the address, never the client's credentials.
func (b *Breaker) trip(ctx context.Context, op string, err error) {
	now := b.cfg.Clock.Now()
	b.nextProbe.Store(now.Add(b.cfg.ProbeEvery).UnixNano())
	b.open.Store(true)
	b.warnMu.Lock()
	warn := b.lastWarn.IsZero() || now.Sub(b.lastWarn) >= b.cfg.WarnEvery
	if warn {
		b.lastWarn = now
	}
	b.warnMu.Unlock()
	if warn {
		msg := b.cfg.Name + ": unavailable"
		if b.cfg.Fallback != "" {
			msg += "; " + b.cfg.Fallback
		}
		b.cfg.Logger.WarnContext(ctx, msg+" until it answers again",
			"op", op, "err", err, "timeout", b.cfg.Timeout, "probe_every", b.cfg.ProbeEvery, "next_warning_in", b.cfg.WarnEvery)
	}
}

type waitsKey struct{}

// Waits adds up the time one request's calls spent waiting on each dependency a Breaker guards, by
// the breaker's name. It is what tells a request that waited on a dependency apart from one a
// loaded machine answered slowly. It is safe for concurrent use.
type Waits struct {
	mu sync.Mutex
	by map[string]time.Duration
}

// WithWaits returns a context whose breaker calls add their waits to the Waits returned.
func WithWaits(ctx context.Context) (context.Context, *Waits) {
	w := &Waits{}
	return context.WithValue(ctx, waitsKey{}, w), w
}

func (w *Waits) add(name string, d time.Duration) {
	w.mu.Lock()
	if w.by == nil {
		w.by = map[string]time.Duration{}
	}
	w.by[name] += d
	w.mu.Unlock()
}

// Each calls f with every dependency called so far and the total time spent waiting on it. A
// dependency whose breaker answered ErrOpen without calling it is not among them.
func (w *Waits) Each(f func(name string, waited time.Duration)) {
	w.mu.Lock()
	by := maps.Clone(w.by)
	w.mu.Unlock()
	for name, d := range by {
		f(name, d)
	}
}
