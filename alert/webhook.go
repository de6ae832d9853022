package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// Defaults for WebhookConfig.
const (
	DefaultWebhookQueue    = 100
	DefaultWebhookAttempts = 5
	DefaultWebhookBackoff  = time.Second
	DefaultWebhookTimeout  = 5 * time.Second
	// maxWebhookWait caps the wait between attempts, a Retry-After included.
	maxWebhookWait = time.Minute
)

// WebhookConfig configures the alert webhook.
type WebhookConfig struct {
	// URL receives each alert as a POST; required. It is never logged: a Slack webhook URL is itself
	// a credential.
	URL string
	// Environment, Instance (the host) and Release label every alert.
	Environment, Instance, Release string
	// Scrubber cleans every alert before it is sent; nil uses NewScrubber().
	Scrubber *Scrubber
	Logger   *slog.Logger
	// QueueSize bounds the alerts waiting to be delivered; beyond it alerts are dropped, counted, and
	// the count goes with the next one delivered. DefaultWebhookQueue when 0.
	QueueSize int
	// Attempts is how many times one alert is tried; DefaultWebhookAttempts when 0.
	Attempts int
	// Backoff is the wait before the second attempt, doubled before each later one;
	// DefaultWebhookBackoff when 0. A 429's Retry-After wins.
	Backoff time.Duration
	// Timeout bounds one attempt; DefaultWebhookTimeout when 0.
	Timeout time.Duration
	// Clock makes the timers between attempts; the real clock when nil.
	Clock fluxauth.Clock
}

// Webhook posts alerts as JSON to a URL, one at a time from a background queue, retrying failures.
// The body is Slack-compatible: {"text": "…"} is the message, and "alert" holds the same alert as
// structured fields for any other receiver.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
	scrub  *Scrubber

	mu      sync.RWMutex
	closed  bool
	queue   chan Alert
	done    chan struct{}
	abort   chan struct{}
	dropped atomic.Uint64
	// runMu guards started: whether the worker runs, started by Run or, when Run never came, by
	// Close for the drain.
	runMu   sync.Mutex
	started bool
	// pending counts the alerts queued or being delivered; idle is closed, and replaced, each time
	// it falls to zero (Flush).
	pendMu  sync.Mutex
	pending int
	idle    chan struct{}
}

// WebhookPayload is the body of each POST.
type WebhookPayload struct {
	// Text is the alert as one line, what Slack shows.
	Text  string       `json:"text"`
	Alert WebhookAlert `json:"alert"`
}

// WebhookAlert is an Alert with where it comes from.
type WebhookAlert struct {
	Alert
	Environment string `json:"environment,omitempty"`
	Instance    string `json:"instance,omitempty"`
	Release     string `json:"release,omitempty"`
	// DroppedAlerts is how many alerts the webhook's full queue dropped since the previous delivery.
	DroppedAlerts uint64 `json:"droppedAlerts,omitempty"`
}

// ValidWebhookURL reports what is wrong with a webhook URL, or nil.
func ValidWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	return nil
}

// NewWebhook returns a webhook delivering to cfg.URL; it starts nothing. Run delivers the alerts
// sent, and Close delivers what is queued and stops it. Alerts sent before Run are queued.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if err := ValidWebhookURL(cfg.URL); err != nil {
		return nil, fmt.Errorf("alert: webhook URL %w", err)
	}
	if cfg.Scrubber == nil {
		cfg.Scrubber = NewScrubber()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultWebhookQueue
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultWebhookAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultWebhookBackoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = fluxauth.SystemClock{}
	}
	w := &Webhook{
		cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, scrub: cfg.Scrubber,
		queue: make(chan Alert, cfg.QueueSize), done: make(chan struct{}), abort: make(chan struct{}),
		idle: make(chan struct{}),
	}
	return w, nil
}

// errRunTwice is Run's answer when the webhook already runs, or was closed before Run.
var errRunTwice = errors.New("alert: webhook Run called on a webhook that already ran or was closed")

// Run delivers the queued alerts, one at a time, until Close, then delivers what is left (within
// Close's deadline) and returns nil. It does not stop when ctx ends: at shutdown the last events
// written still raise alerts after that, and Close, once they are sent, is what drains the queue.
// A webhook runs once.
func (w *Webhook) Run(ctx context.Context) error {
	w.runMu.Lock()
	if w.started {
		w.runMu.Unlock()
		return errRunTwice
	}
	w.started = true
	w.runMu.Unlock()
	w.run()
	return nil
}

// Send queues a, or drops and counts it when the queue is full or the webhook closed.
func (w *Webhook) Send(a Alert) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	w.addPending(1) // before the worker can take it
	select {
	case w.queue <- a:
	default:
		w.addPending(-1)
		w.dropped.Add(1)
	}
}

func (w *Webhook) addPending(n int) {
	w.pendMu.Lock()
	defer w.pendMu.Unlock()
	w.pending += n
	if w.pending == 0 {
		close(w.idle)
		w.idle = make(chan struct{})
	}
}

// Flush waits until every alert sent so far has been delivered or given up on (retries included),
// or until ctx ends or the webhook has stopped; it reports whether the queue was emptied. Unlike
// Close it leaves the webhook running.
func (w *Webhook) Flush(ctx context.Context) bool {
	for {
		w.pendMu.Lock()
		n, idle := w.pending, w.idle
		w.pendMu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-idle:
		case <-w.done:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Close stops accepting alerts and delivers those queued, retries included, until ctx ends; what is
// left then is dropped, and Close says so.
func (w *Webhook) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	w.runMu.Lock()
	if !w.started { // Run never came: the alerts queued are delivered here
		w.started = true
		go w.run()
	}
	w.runMu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		close(w.abort)
		<-w.done
		return fmt.Errorf("alert: webhook alerts left undelivered at shutdown: %w", ctx.Err())
	}
}

func (w *Webhook) run() {
	defer close(w.done)
	for a := range w.queue {
		select {
		case <-w.abort:
			w.addPending(-1)
			continue // drain without delivering
		default:
		}
		w.deliver(a)
		w.addPending(-1)
	}
}

// deliver posts one alert, retrying network failures, 5xx, 408 and 429 with growing waits.
func (w *Webhook) deliver(a Alert) {
	a.Metadata, _ = w.scrub.Value("", a.Metadata).(map[string]any)
	dropped := w.dropped.Swap(0)
	payload := WebhookPayload{
		Text: w.scrub.Text(a.Text()),
		Alert: WebhookAlert{Alert: a, Environment: w.cfg.Environment, Instance: w.cfg.Instance,
			Release: w.cfg.Release, DroppedAlerts: dropped},
	}
	if dropped > 0 {
		payload.Text += fmt.Sprintf("; %d earlier alerts were dropped (webhook queue full)", dropped)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		w.cfg.Logger.Error("alert webhook: cannot encode alert", "type", a.Type, "err", err)
		return
	}
	wait := w.cfg.Backoff
	var last string
	for attempt := 1; attempt <= w.cfg.Attempts; attempt++ {
		retryAfter, done, problem := w.post(body)
		if done {
			return
		}
		last = problem
		if retryAfter < 0 || attempt == w.cfg.Attempts {
			break
		}
		d := wait
		if retryAfter > 0 {
			d = retryAfter
		}
		timer, fired := w.cfg.Clock.NewTimer(min(d, maxWebhookWait))
		select {
		case <-fired:
		case <-w.abort:
			timer.Stop()
			w.cfg.Logger.Warn("alert webhook: shutting down; alert not delivered", "type", a.Type, "last_problem", last)
			return
		}
		wait = min(wait*2, maxWebhookWait)
	}
	w.cfg.Logger.Error("alert webhook: alert not delivered", "type", a.Type, "attempts", w.cfg.Attempts, "last_problem", last)
}

// post makes one attempt. done is true on a 2xx; otherwise problem says what failed, and retryAfter
// is negative when retrying cannot help, positive when the receiver asked for a wait.
func (w *Webhook) post(body []byte) (retryAfter time.Duration, done bool, problem string) {
	req, err := http.NewRequest(http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return -1, false, "bad request"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fluxauth-alerts")
	resp, err := w.client.Do(req)
	if err != nil {
		// The error names the URL, which must not be logged.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return 0, false, err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return 0, true, ""
	case resp.StatusCode == http.StatusTooManyRequests:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return time.Duration(max(secs, 0)) * time.Second, false, resp.Status
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return 0, false, resp.Status
	default:
		return -1, false, resp.Status
	}
}
