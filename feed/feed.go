// Package feed is the live security-event feed behind the dashboard's stream: one Hub per instance
// reads newly committed events from the database and fans them out to every connected stream, so
// the database is read once per wake-up, not once per dashboard per event.
//
// The hub reads when woken: on PostgreSQL by LISTEN/NOTIFY (a trigger on security_events notifies
// at each inserting statement's commit, on whichever instance wrote it: see postgres.DB.ListenEvents);
// on SQLite, which only one instance uses, by the audit recorder's in-process subscription and a
// poll every second (for events a command such as "fluxauth users set-type" wrote). Wakes
// coalesce: however many arrive during a read, one more read follows. The hub also runs the
// reactions registered for an event type (an admin's unlock clears the lockout in each instance's
// own limiter), so they reach every instance the way events do.
//
// Each subscriber has a bounded buffer. A subscriber that falls that far behind is dropped (its
// channel is closed) rather than slowing the hub or the others; its client reconnects with the last
// id it received and resumes from the database without a gap (see Cursor).
package feed

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/audit"
)

// Config tunes a Hub; zero values take the defaults.
type Config struct {
	// Buffer is how many events a subscriber may be behind before it is dropped (default 1024).
	Buffer int
	// Window is how long a seq skipped by a read is waited for (default 10s): see Cursor.
	Window time.Duration
	// Batch is the most events one query reads (default 500).
	Batch int
	// RetryInterval is the pause after a failed read before the next (default 1s).
	RetryInterval time.Duration
	// PollEvery is how often the hub reads a database that sends no notifications (SQLite), for
	// the events another process wrote there, such as "fluxauth users set-type" (default 1s).
	PollEvery time.Duration
}

// Event is an event as the feed hands it out: shared by every subscriber, so its encoding is made
// once for all of them.
type Event struct {
	*fluxauth.SecurityEvent
	once sync.Once
	data []byte
}

// Data returns encode(e), computed by the first caller only. Every caller must pass the same encode.
func (e *Event) Data(encode func(*fluxauth.SecurityEvent) []byte) []byte {
	e.once.Do(func() { e.data = encode(e.SecurityEvent) })
	return e.data
}

// Hub is one instance's reader of the audit log and its live subscribers.
type Hub struct {
	store  fluxauth.EventFeedStore
	clock  fluxauth.Clock
	logger *slog.Logger
	cfg    Config
	wake   chan struct{}
	ready  chan struct{} // closed once Run knows where the log ends

	reactions map[string][]func(context.Context, *fluxauth.SecurityEvent)

	mu     sync.Mutex
	cursor Cursor // what the hub has delivered
	subs   map[*Subscription]struct{}
	closed bool
}

// ErrClosed is returned by Subscribe once the hub is closed: the service is stopping.
var ErrClosed = errors.New("feed: closed")

// New returns a hub reading store. Call Run to start it.
func New(store fluxauth.EventFeedStore, clock fluxauth.Clock, logger *slog.Logger, cfg Config) *Hub {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 1024
	}
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = time.Second
	}
	return &Hub{
		store: store, clock: clock, logger: logger, cfg: cfg,
		wake: make(chan struct{}, 1), ready: make(chan struct{}),
		reactions: map[string][]func(context.Context, *fluxauth.SecurityEvent){},
		subs:      map[*Subscription]struct{}{},
	}
}

// React registers fn to run, on the hub's goroutine, for every committed event of type typ, once
// per event. Register before Run.
func (h *Hub) React(typ string, fn func(ctx context.Context, e *fluxauth.SecurityEvent)) {
	h.reactions[typ] = append(h.reactions[typ], fn)
}

// Wake asks the hub to read what was committed; it never blocks.
func (h *Hub) Wake() {
	select {
	case h.wake <- struct{}{}:
	default: // a read is already due; it will see this commit too
	}
}

// Listener is a database that tells every instance when security events are committed
// (postgres.DB).
type Listener interface {
	ListenEvents(ctx context.Context, wake func(), retry time.Duration, onError func(error))
}

// Listen wakes the hub whenever events are committed, until ctx ends: through db's notifications
// when it is a Listener, else through the recorder's subscription. PostgreSQL's LISTEN/NOTIFY
// reaches every instance sharing the database, is sent only at commit (once the rows are
// visible), and needs nothing beyond the database; Redis pub/sub would need a publish after every
// commit on every code path, and would lose wakes while Redis is down. A database without
// notifications (SQLite) serves one instance, whose own recorder sees the events it writes; the
// hub also reads it every PollEvery for those a command run beside it wrote.
func (h *Hub) Listen(ctx context.Context, db any, recorder *audit.Recorder) {
	if l, ok := db.(Listener); ok {
		l.ListenEvents(ctx, h.Wake, h.cfg.RetryInterval, func(err error) {
			h.logger.Warn("security feed: listening for new events failed; reconnecting", "err", err)
		})
		return
	}
	// A missed event is only a missed wake: the next read catches up.
	committed := recorder.Follow(64)
	defer committed.Close()
	ticker, ticks := h.clock.NewTicker(h.cfg.PollEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-committed.C:
			h.Wake()
		case <-ticks:
			h.Wake()
		}
	}
}

// Run reads and fans out until ctx ends. It starts at the end of the log: events committed before
// it are not delivered live (a stream that resumes reads them from the database).
func (h *Hub) Run(ctx context.Context) error {
	for {
		last, err := h.store.LastEventSeq(ctx)
		if err == nil {
			h.mu.Lock()
			h.cursor = newCursor(last)
			h.mu.Unlock()
			close(h.ready)
			break
		}
		h.logger.Warn("security feed: cannot read the audit log's position; retrying", "err", err)
		if !h.sleep(ctx, h.cfg.RetryInterval) {
			return nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.wake:
		}
		if err := h.read(ctx); err != nil && ctx.Err() == nil {
			h.logger.Warn("security feed: reading new events failed; retrying", "err", err)
			if !h.sleep(ctx, h.cfg.RetryInterval) {
				return nil
			}
			h.Wake()
		}
	}
}

// sleep waits d on the hub's clock, and reports false when ctx ended first.
func (h *Hub) sleep(ctx context.Context, d time.Duration) bool {
	t, fired := h.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-fired:
		return true
	}
}

// read delivers everything committed since the last read, in batches, and the pending seqs that
// have committed since.
func (h *Hub) read(ctx context.Context) error {
	for {
		h.mu.Lock()
		h.cursor.expire(h.clock.Now(), h.cfg.Window)
		after, also := h.cursor.high, h.cursor.pendingSeqs()
		h.mu.Unlock()
		evs, err := h.store.EventsAfterSeq(ctx, after, also, h.cfg.Batch)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if h.deliver(ev) {
				for _, fn := range h.reactions[ev.Type] {
					fn(ctx, ev)
				}
			}
		}
		if len(evs) < h.cfg.Batch {
			return nil
		}
	}
}

// deliver hands ev to every subscriber unless the hub has delivered it already, dropping the
// subscribers whose buffers are full.
func (h *Hub) deliver(ev *fluxauth.SecurityEvent) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.cursor.accept(ev.Seq, h.clock.Now()) {
		return false
	}
	e := &Event{SecurityEvent: ev}
	for s := range h.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped = true
			h.removeLocked(s)
		}
	}
	return true
}

func (h *Hub) removeLocked(s *Subscription) {
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
		close(s.done)
	}
}

// Subscribe starts a subscription at lastEventID, the cursor of the last event a stream sent (see
// Cursor), or at the end of the log when it is "". It waits until the hub has started, or ctx ends.
// ErrBadCursor when lastEventID is not a cursor; ErrClosed once the hub is closed.
func (h *Hub) Subscribe(ctx context.Context, lastEventID string) (*Subscription, error) {
	s := &Subscription{hub: h, ch: make(chan *Event, h.cfg.Buffer), done: make(chan struct{}), window: h.cfg.Window, clock: h.clock}
	if lastEventID != "" {
		c, err := ParseCursor(lastEventID, h.clock.Now())
		if err != nil {
			return nil, err
		}
		s.cursor, s.resume = c, true
	}
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if s.resume {
		s.start = h.cursor.clone()
	} else {
		// From exactly what the hub has delivered: everything it delivers from now on is new.
		s.cursor = h.cursor.clone()
	}
	h.subs[s] = struct{}{}
	return s, nil
}

// Close ends every subscription and refuses new ones: at shutdown, streams end at once instead of
// holding the server's drain until its deadline.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.removeLocked(s)
	}
}

// Delivered returns the highest seq the hub has handed out: a subscription made now starts after it.
func (h *Hub) Delivered() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cursor.High()
}

// Subscribers returns how many subscriptions are live.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Subscription is one stream's feed. It is used by one goroutine.
type Subscription struct {
	hub    *Hub
	ch     chan *Event
	done   chan struct{} // closed with ch
	window time.Duration
	clock  fluxauth.Clock
	cursor Cursor // what this subscriber has delivered
	resume bool   // the cursor came from the client: CatchUp reads from it
	// start is what the hub had delivered when the subscription began: where a client's cursor
	// beyond the end of the log starts instead, since every event after it arrives on C.
	start Cursor
	// dropped is set, under the hub's lock, when the hub dropped the subscriber for falling behind.
	dropped bool
}

// C receives the hub's events; it is closed when the subscriber is dropped or the hub closes. Pass
// each event to Accept before sending it.
func (s *Subscription) C() <-chan *Event { return s.ch }

// Done is closed when C is, at once: a stream blocked writing to a client that stopped reading
// learns from it that it has been dropped, without waiting for its write to time out.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Dropped reports whether C was closed because the subscriber fell behind (rather than shutdown).
// Call it once C is closed.
func (s *Subscription) Dropped() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.dropped
}

// Accept reports whether the subscriber should send e, which it has not sent before, and returns
// the cursor to send with it.
func (s *Subscription) Accept(e *fluxauth.SecurityEvent) (id string, ok bool) {
	now := s.clock.Now()
	if !s.cursor.accept(e.Seq, now) {
		return "", false
	}
	if len(s.cursor.pending) > 0 {
		s.cursor.expire(now, s.window)
	}
	return s.cursor.String(), true
}

// CatchUp sends, through send, the events committed after the client's cursor and before the
// subscription started, then returns; the events after that arrive on C (and those both saw are
// sent once: Accept drops the second). It does nothing for a subscription without a cursor. A
// cursor beyond the end of the log (from another database, or made up) starts at the end instead.
func (s *Subscription) CatchUp(ctx context.Context, send func(e *Event, id string) error) error {
	if !s.resume {
		return nil
	}
	s.resume = false
	last, err := s.hub.store.LastEventSeq(ctx)
	if err != nil {
		return err
	}
	if s.cursor.high > last {
		// Not the log's end as read now: an event committed since the subscription began may be on
		// C already, and would then count as seen.
		s.cursor = s.start
	}
	for {
		s.cursor.expire(s.clock.Now(), s.window)
		evs, err := s.hub.store.EventsAfterSeq(ctx, s.cursor.high, s.cursor.pendingSeqs(), s.hub.cfg.Batch)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if id, ok := s.Accept(ev); ok {
				if err := send(&Event{SecurityEvent: ev}, id); err != nil {
					return err
				}
			}
		}
		if len(evs) < s.hub.cfg.Batch {
			return nil
		}
	}
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s)
}
