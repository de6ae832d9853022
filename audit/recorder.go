// Package audit records security events durably and hands them to live subscribers (the dashboard,
// alerting). Requests enqueue events and go on; a background writer inserts them in batches, so
// recording costs a request well under a millisecond while no event is lost: the queue is bounded
// (a full queue makes callers wait rather than drop), critical events are written through before the
// request answers (within their own deadline, since the request's cancellation does not cancel its
// events), and Close drains the queue or, when its deadline passes first, logs how many events it
// could not write. While the database refuses writes, Record refuses new events with
// audit_unavailable (503) rather than pile them up in memory.
//
// The one exception is an event the database refuses for what it holds (fluxauth.ErrInvalidData, or
// a duplicate ID): retrying it would fail forever and hold every later event behind it, so the batch
// is split until that event stands alone, and it is set aside: logged (its ID and type, never its
// contents) and counted (SetAside, exported on /metrics).
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// Inserter is where events are kept.
type Inserter interface {
	InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error
}

// Config tunes the recorder; zero values take the defaults.
type Config struct {
	QueueSize     int           // events waiting to be written (default 10,000)
	BatchSize     int           // events per INSERT (default 500)
	FlushInterval time.Duration // longest an event waits for its batch (default 50ms)
	RetryInterval time.Duration // pause after a failed write before trying again (default 1s)
	// CriticalTimeout bounds the write of critical events, which the request waits for
	// (default DefaultCriticalTimeout).
	CriticalTimeout time.Duration
	// Clock makes the flush ticker and the wait between failed writes; the real clock when nil.
	Clock fluxauth.Clock
}

// DefaultCriticalTimeout bounds a critical event's write: long enough for a busy database, short
// enough that a request does not hang on one that stopped answering (it gets audit_unavailable).
const DefaultCriticalTimeout = 5 * time.Second

// Recorder implements account.Recorder.
type Recorder struct {
	store Inserter
	log   *slog.Logger
	cfg   Config
	queue chan item
	// closed is closed first by Close: it refuses new events and wakes the Record and Flush calls
	// waiting on a full queue.
	closed chan struct{}
	// sendMu guards the sends on queue: a send holds it for reading, and Close takes it for writing
	// (setting stopped) before it lets run drain the queue, so that no send can land after the drain.
	sendMu  sync.RWMutex
	stopped bool
	// drain is closed by Close once no send can follow: run then writes what is queued and stops.
	drain chan struct{}
	done  chan struct{}
	once  sync.Once
	// runMu guards started: whether the writer runs, started by Run or, when Run never came, by
	// Close for the drain.
	runMu   sync.Mutex
	started bool
	// abandon ends the writes in progress once Close has given up on them, so that no connection
	// stays held by a write to a database that stopped answering (closing a pool waits for those).
	abandon    context.Context
	abandonNow context.CancelFunc
	// failing is set while the store refuses writes: new events are then refused (503) instead of
	// piling up in memory behind a database that may not come back.
	failing atomic.Bool
	// setAside counts the events the database refused for what they hold.
	setAside atomic.Uint64
	// pending counts the events accepted into the queue and not yet written, set aside or logged
	// as lost: what Close reports when its deadline passes first.
	pending atomic.Int64

	mu   sync.Mutex
	subs map[*subscription]struct{}
}

// New returns a recorder writing to store; it starts nothing. Run writes the events, and Close
// drains them. Events recorded before Run are queued (critical ones are written at once).
func New(store Inserter, logger *slog.Logger, cfg Config) *Recorder {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10000
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 50 * time.Millisecond
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.CriticalTimeout <= 0 {
		cfg.CriticalTimeout = DefaultCriticalTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = fluxauth.SystemClock{}
	}
	abandon, abandonNow := context.WithCancel(context.Background())
	r := &Recorder{
		store: store, log: logger, cfg: cfg, abandon: abandon, abandonNow: abandonNow,
		queue:  make(chan item, cfg.QueueSize),
		closed: make(chan struct{}),
		drain:  make(chan struct{}),
		done:   make(chan struct{}),
		subs:   map[*subscription]struct{}{},
	}
	return r
}

// errRunTwice is Run's answer when the recorder already runs, or was closed before Run.
var errRunTwice = errors.New("audit: Run called on a recorder that already ran or was closed")

// Run writes the queued events in batches until Close, then writes what is left in the queue and
// returns nil. It does not stop when ctx ends: at shutdown the requests still being answered record
// events after that, and Close, once they are done, is what drains the queue (within its own
// deadline). A recorder runs once.
func (r *Recorder) Run(ctx context.Context) error {
	r.runMu.Lock()
	if r.started {
		r.runMu.Unlock()
		return errRunTwice
	}
	r.started = true
	r.runMu.Unlock()
	r.run()
	return nil
}

// ErrClosed is returned by Record after Close: the service is stopping.
var ErrClosed = &fluxauth.Error{Code: fluxauth.EAuditUnavailable, Message: unavailableMessage, Err: errors.New("audit: recorder closed")}

const unavailableMessage = "The security event log is temporarily unavailable; try again shortly."

// unavailable names the audit log as the dependency that failed (503 audit_unavailable) when the
// database could not be reached or did not answer in time; any other failure stays what it is.
func unavailable(err error) error {
	if errors.Is(err, fluxauth.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return fluxauth.Wrap(fluxauth.EAuditUnavailable, unavailableMessage, err)
	}
	return err
}

// Record keeps events. Critical ones are written before Record returns, within CriticalTimeout;
// the rest are queued. A queue that is full makes Record wait (the request is slowed, not the event
// dropped). When the database is failing, Record returns an audit_unavailable error (wrapping
// fluxauth.ErrUnavailable).
func (r *Recorder) Record(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	// The request may be cancelled the moment it has answered; its events must survive that.
	// WithoutCancel drops its deadline too: the critical write gets its own below.
	ctx = context.WithoutCancel(ctx)
	select {
	case <-r.closed:
		return ErrClosed
	default:
	}
	var critical []*fluxauth.SecurityEvent
	for _, ev := range events {
		if ev.Severity == fluxauth.SeverityCritical {
			critical = append(critical, ev)
		}
	}
	if len(critical) > 0 {
		wctx, cancel := context.WithTimeout(ctx, r.cfg.CriticalTimeout)
		err := r.store.InsertEvents(wctx, critical...)
		cancel()
		if err != nil {
			return unavailable(fmt.Errorf("audit: write critical event: %w", err))
		}
		r.publish(critical)
	}
	if r.failing.Load() {
		return unavailable(fmt.Errorf("%w: audit log is not accepting events", fluxauth.ErrUnavailable))
	}
	for _, ev := range events {
		if ev.Severity == fluxauth.SeverityCritical {
			continue
		}
		if err := r.enqueue(ctx, item{ev: ev}); err != nil {
			return err
		}
	}
	return nil
}

// enqueue puts it on the queue, or returns ErrClosed once Close has been called (or ctx's error):
// an item it accepts is always queued before Close drains the queue, so it is written.
func (r *Recorder) enqueue(ctx context.Context, it item) error {
	r.sendMu.RLock()
	defer r.sendMu.RUnlock()
	if r.stopped {
		return ErrClosed
	}
	if it.ev != nil {
		r.pending.Add(1)
	}
	select {
	case r.queue <- it:
		return nil
	case <-r.closed:
	case <-ctx.Done():
	}
	if it.ev != nil {
		r.pending.Add(-1)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return ErrClosed
}

// item is a queued event, or a flush marker whose done is closed once everything queued before it
// has been written.
type item struct {
	ev   *fluxauth.SecurityEvent
	done chan struct{}
}

// Flush waits until every event queued before the call has been written.
func (r *Recorder) Flush(ctx context.Context) error {
	done := make(chan struct{})
	if err := r.enqueue(ctx, item{done: done}); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Committed hands events that were written inside another transaction to the subscribers.
func (r *Recorder) Committed(events ...*fluxauth.SecurityEvent) { r.publish(events) }

// Close stops accepting events and waits until every queued event is written or ctx ends. When ctx
// ends first, the write in progress is abandoned, and the number of events not known to be written
// is logged and returned in the error: they are never dropped silently. (A batch whose insert was
// cut off after the database committed it, its answer still on the way, is counted: in doubt.)
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() {
		close(r.closed) // refuses new events and wakes the senders waiting on a full queue
		r.sendMu.Lock() // waits for the sends in progress, which either queued or were refused
		r.stopped = true
		r.sendMu.Unlock()
		close(r.drain) // nothing can be queued any more: run drains what is and stops
		r.runMu.Lock()
		if !r.started { // Run never came: the events queued are drained here
			r.started = true
			go r.run()
		}
		r.runMu.Unlock()
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.abandonNow()
		n := r.pending.Load()
		r.log.Error("audit: security events not written before the shutdown deadline", "events", n)
		return fmt.Errorf("audit: %d security events not written before the shutdown deadline: %w", n, ctx.Err())
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]*fluxauth.SecurityEvent, 0, r.cfg.BatchSize)
	var waiters []chan struct{}
	flush := func() {
		r.write(batch)
		batch = batch[:0]
		for _, w := range waiters {
			close(w)
		}
		waiters = waiters[:0]
	}
	add := func(it item) {
		if it.done != nil {
			waiters = append(waiters, it.done)
			flush()
			return
		}
		batch = append(batch, it.ev)
		if len(batch) == r.cfg.BatchSize {
			flush()
		}
	}
	ticker, ticks := r.cfg.Clock.NewTicker(r.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case it := <-r.queue:
			add(it)
		case <-ticks:
			if len(batch) > 0 {
				flush()
			}
		case <-r.drain:
			// Drain whatever is queued, then stop.
			for {
				select {
				case it := <-r.queue:
					add(it)
					continue
				default:
				}
				break
			}
			flush()
			return
		}
	}
}

// write inserts one batch, retrying until it succeeds: a batch is only ever dropped if the process
// is stopped while the database is down, and then it is logged as lost. A batch the database refuses
// for what it holds is split instead, so that only the refused events are set aside.
func (r *Recorder) write(batch []*fluxauth.SecurityEvent) {
	if len(batch) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		if r.abandon.Err() != nil {
			return // Close gave up on these events and logged how many they are
		}
		ctx, cancel := context.WithTimeout(r.abandon, 10*time.Second)
		err := r.store.InsertEvents(ctx, batch...)
		cancel()
		if err == nil {
			r.pending.Add(-int64(len(batch)))
			if r.failing.Swap(false) {
				r.log.Info("audit log writable again")
			}
			r.publish(batch)
			return
		}
		if refused(err) {
			// The database answers; the data is what it will not take. One bad event in 500 costs
			// about 18 inserts to find.
			if len(batch) == 1 {
				r.setAside.Add(1)
				r.pending.Add(-1)
				ev := batch[0]
				r.log.Error("audit event set aside: the database refused it", "event_id", ev.ID,
					"event_type", ev.Type, "severity", ev.Severity, "created_at", ev.CreatedAt, "err", err)
				return
			}
			r.write(batch[:len(batch)/2])
			r.write(batch[len(batch)/2:])
			return
		}
		if r.abandon.Err() != nil {
			return
		}
		if !r.failing.Swap(true) {
			r.log.Error("audit log write failed; retrying", "events", len(batch), "err", err)
		}
		select {
		case <-r.closed:
			if attempt >= 3 {
				r.pending.Add(-int64(len(batch)))
				r.log.Error("audit events lost at shutdown: the database refused them", "events", len(batch), "err", err)
				return
			}
		default:
		}
		r.pause()
	}
}

// pause waits RetryInterval before a write is tried again, or less when Close gives up on the writes.
func (r *Recorder) pause() {
	timer, fired := r.cfg.Clock.NewTimer(r.cfg.RetryInterval)
	defer timer.Stop()
	select {
	case <-fired:
	case <-r.abandon.Done():
	}
}

// refused reports whether the store refused a write for the values it holds, which no retry changes.
// Any other failure (the database unreachable, out of space, a permission missing) is retried: the
// events are kept until an operator has repaired it.
func refused(err error) bool {
	return errors.Is(err, fluxauth.ErrInvalidData) || errors.Is(err, fluxauth.ErrConflict)
}

// SetAside returns how many events the database has refused for what they hold, since New.
func (r *Recorder) SetAside() uint64 { return r.setAside.Load() }

type subscription struct {
	ch chan fluxauth.SecurityEvent
	// dropped counts the events this subscriber missed because its buffer was full.
	dropped atomic.Uint64
}

// Subscription is a live feed of recorded events that counts what it misses.
type Subscription struct {
	// C receives every event once it is recorded; it is closed by Close.
	C <-chan fluxauth.SecurityEvent
	s *subscription
	r *Recorder
}

// Dropped returns how many events the subscriber missed, since it subscribed, because it had fallen
// more than its buffer behind.
func (s *Subscription) Dropped() uint64 { return s.s.dropped.Load() }

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	s.r.mu.Lock()
	if _, ok := s.r.subs[s.s]; ok {
		delete(s.r.subs, s.s)
		close(s.s.ch)
	}
	s.r.mu.Unlock()
}

// Follow subscribes to recorded events with a buffer of buf. A subscriber that falls more than buf
// events behind misses events, since publishing never waits for it: the database, not the feed, is
// the record. It counts them (Dropped), so that what it reports can say it is incomplete.
func (r *Recorder) Follow(buf int) *Subscription {
	s := &subscription{ch: make(chan fluxauth.SecurityEvent, buf)}
	r.mu.Lock()
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	return &Subscription{C: s.ch, s: s, r: r}
}

// Subscribe returns a channel that receives every event once it is recorded, and a function that
// ends the subscription: Follow for a subscriber that needs no count of what it missed.
func (r *Recorder) Subscribe(buf int) (<-chan fluxauth.SecurityEvent, func()) {
	s := r.Follow(buf)
	return s.C, s.Close
}

func (r *Recorder) publish(events []*fluxauth.SecurityEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.subs {
		for _, ev := range events {
			select {
			case s.ch <- *ev:
			default:
				s.dropped.Add(1)
			}
		}
	}
}
