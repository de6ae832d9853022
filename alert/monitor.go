package alert

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// Defaults for MonitorConfig.
const (
	// DefaultCountEvery is how often the counts gathered since the last time are added to the
	// shared counters: a threshold alert comes at most this much after the crossing, and Redis sees
	// one call per key per interval rather than one per event.
	DefaultCountEvery = time.Second
	// DefaultCapPerMinute is how many alerts of one type an instance sends in a minute; the rest are
	// counted and the count goes with the next one sent. A flood (a botnet tripping the same alarm
	// from thousands of addresses) must not bury the people reading the alerts.
	DefaultCapPerMinute = 100
	// maxPendingKeys bounds the keys counted between two flushes; events for keys beyond it are
	// not counted (an attack that wide is visible in the keys already counted).
	maxPendingKeys = 10000
)

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	Thresholds Thresholds
	// Counter holds the threshold counts: the instance's ratelimit.Memory, or the ratelimit.Fallback
	// on Redis that every instance shares. Nil switches threshold alerts off.
	Counter ratelimit.Threshold
	// Sinks receive every alert.
	Sinks  []Sink
	Logger *slog.Logger
	Clock  fluxauth.Clock
	// CountEvery and CapPerMinute take the defaults when 0.
	CountEvery   time.Duration
	CapPerMinute int
}

// Monitor turns security events into alerts: every critical event at once, and a threshold alert
// when failed logins (per IP, per account) or rate-limit refusals (per IP) reach their thresholds.
// It reads the audit recorder's subscription, so it sees events only once they are committed, and
// only those this instance committed; counts are shared through the Counter.
type Monitor struct {
	cfg MonitorConfig

	mu      sync.Mutex
	pending map[pendingKey]int // counts gathered since the last flush

	// Used by Run's goroutine only.
	caps         map[string]*capWindow
	missedBefore uint64
	missed       func() uint64
}

type pendingKey struct{ typ, key string }

type capWindow struct {
	start    time.Time
	sent     int
	heldBack int
}

// NewMonitor returns a monitor; Run starts it.
func NewMonitor(cfg MonitorConfig) *Monitor {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = fluxauth.SystemClock{}
	}
	if cfg.CountEvery <= 0 {
		cfg.CountEvery = DefaultCountEvery
	}
	if cfg.CapPerMinute <= 0 {
		cfg.CapPerMinute = DefaultCapPerMinute
	}
	return &Monitor{cfg: cfg, pending: map[pendingKey]int{}, caps: map[string]*capWindow{}}
}

// RateLimited counts one rate-limit refusal (a 429) answered to ip. It is the one call made on a
// request's behalf, because refusals are not audit events (only the first per key per window is):
// it only adds to a map, under a lock held for nothing else.
func (m *Monitor) RateLimited(ip string) {
	if m.cfg.Counter == nil || m.cfg.Thresholds.RateLimited.IsZero() || ip == "" {
		return
	}
	m.count(RateLimitedPerIP, ip, 1)
}

func (m *Monitor) count(typ, key string, n int) {
	k := pendingKey{typ, key}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.pending[k]; ok || len(m.pending) < maxPendingKeys {
		m.pending[k] += n
	}
}

// Run handles events until the channel is closed or ctx ends, then counts what it gathered once
// more. missed reports how many events the subscription dropped (audit.Subscription.Dropped); nil
// when unknown.
func (m *Monitor) Run(ctx context.Context, events <-chan fluxauth.SecurityEvent, missed func() uint64) {
	m.missed = missed
	ticker, ticks := m.cfg.Clock.NewTicker(m.cfg.CountEvery)
	defer ticker.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				m.flush(context.WithoutCancel(ctx))
				return
			}
			m.event(ev)
		case <-ticks:
			m.flush(ctx)
		case <-ctx.Done():
			m.flush(context.WithoutCancel(ctx))
			return
		}
	}
}

func (m *Monitor) event(ev fluxauth.SecurityEvent) {
	if ev.Severity == fluxauth.SeverityCritical {
		m.emit(Alert{
			Kind: KindSecurityEvent, Type: ev.Type, Severity: ev.Severity, At: ev.CreatedAt,
			UserID: ev.UserID, IP: ev.IPAddress, EventID: ev.ID, Metadata: maps.Clone(ev.Metadata),
		})
	}
	if ev.Type == fluxauth.EventFailedLogin && m.cfg.Counter != nil && !m.cfg.Thresholds.FailedLogins.IsZero() {
		if ev.IPAddress != "" {
			m.count(FailedLoginsPerIP, ev.IPAddress, 1)
		}
		if ev.UserID != "" {
			m.count(FailedLoginsPerAccount, ev.UserID, 1)
		}
	}
}

// flush adds the gathered counts to the counter and alerts on the keys that crossed.
func (m *Monitor) flush(ctx context.Context) {
	m.mu.Lock()
	pending := m.pending
	m.pending = map[pendingKey]int{}
	m.mu.Unlock()
	var failures int
	var lastErr error
	for k, n := range pending {
		l := m.cfg.Thresholds.FailedLogins
		if k.typ == RateLimitedPerIP {
			l = m.cfg.Thresholds.RateLimited
		}
		count, crossed, err := m.cfg.Counter.Note(ctx, ratelimit.Key("alert:"+k.typ, k.key), l, n)
		if err != nil {
			failures, lastErr = failures+1, err
			continue
		}
		if !crossed {
			continue
		}
		a := Alert{Kind: KindThreshold, Type: k.typ, Severity: fluxauth.SeverityWarning, At: m.cfg.Clock.Now(),
			Count: count, Threshold: l.String()}
		if k.typ == FailedLoginsPerAccount {
			a.UserID = k.key
		} else {
			a.IP = k.key
		}
		m.emit(a)
	}
	if failures > 0 {
		m.cfg.Logger.Warn("alerts: threshold counts not updated", "keys", failures, "err", lastErr)
	}
}

// emit sends a to every sink, unless its type has had its share this minute.
func (m *Monitor) emit(a Alert) {
	now := m.cfg.Clock.Now()
	c := m.caps[a.Type]
	if c == nil || now.Sub(c.start) >= time.Minute {
		heldBack := 0
		if c != nil {
			heldBack = c.heldBack
		}
		c = &capWindow{start: now, heldBack: heldBack}
		m.caps[a.Type] = c
	}
	if c.sent >= m.cfg.CapPerMinute {
		if c.heldBack == 0 {
			m.cfg.Logger.Warn("alerts: too many of one type; holding the rest back for a minute", "type", a.Type, "cap", m.cfg.CapPerMinute)
		}
		c.heldBack++
		return
	}
	c.sent++
	a.HeldBack, c.heldBack = c.heldBack, 0
	if m.missed != nil {
		total := m.missed()
		a.MissedEvents, m.missedBefore = total-m.missedBefore, total
	}
	if a.At.IsZero() {
		a.At = now
	}
	m.cfg.Logger.Warn("security alert", "type", a.Type, "severity", a.Severity, "user_id", a.UserID, "ip", a.IP,
		"count", a.Count, "held_back", a.HeldBack, "missed_events", a.MissedEvents)
	for _, s := range m.cfg.Sinks {
		s.Send(a)
	}
}
