// Package alerttest has loopback stand-ins for what alerts are sent to, for tests: a Sentry ingest
// that decodes and keeps every envelope it is sent, an ingest that never answers, and a webhook
// receiver that can be told to fail.
package alerttest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Event is a Sentry event as the ingest received it.
type Event struct {
	Level       string            `json:"level"`
	Message     string            `json:"message"`
	Logger      string            `json:"logger"`
	Transaction string            `json:"transaction"`
	Release     string            `json:"release"`
	Environment string            `json:"environment"`
	ServerName  string            `json:"server_name"`
	Tags        map[string]string `json:"tags"`
	Fingerprint []string          `json:"fingerprint"`
	Exception   []struct {
		Type       string `json:"type"`
		Value      string `json:"value"`
		Stacktrace *struct {
			Frames []struct {
				Function string `json:"function"`
				Module   string `json:"module"`
			} `json:"frames"`
		} `json:"stacktrace"`
	} `json:"exception"`
	Contexts    map[string]map[string]any `json:"contexts"`
	Breadcrumbs []struct {
		Message string         `json:"message"`
		Data    map[string]any `json:"data"`
	} `json:"breadcrumbs"`
	// Raw is the event's JSON as sent.
	Raw json.RawMessage `json:"-"`
}

// Details returns the "fluxauth" context: the record's attributes or the alert's details.
func (e Event) Details() map[string]any { return e.Contexts["fluxauth"] }

// HasFrame reports whether a stack trace of the event has a frame of function (as Sentry names it,
// e.g. "(*Server).readyz") or one ending with it.
func (e Event) HasFrame(function string) bool {
	for _, ex := range e.Exception {
		if ex.Stacktrace == nil {
			continue
		}
		for _, f := range ex.Stacktrace.Frames {
			if f.Function == function || (len(f.Function) > len(function) && f.Function[len(f.Function)-len(function):] == function) {
				return true
			}
		}
	}
	return false
}

// Sentry is a loopback Sentry ingest: it accepts POST /api/<project>/envelope/, decodes each
// envelope's items and keeps them.
type Sentry struct {
	server *httptest.Server
	events chan Event

	mu        sync.Mutex
	envelopes [][]byte
	all       []Event
}

var envelopePath = regexp.MustCompile(`^/api/([0-9]+)/envelope/$`)

// NewSentry starts an ingest that stops when tb ends.
func NewSentry(tb testing.TB) *Sentry {
	tb.Helper()
	s := &Sentry{events: make(chan Event, 10000)}
	s.server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.server.Close)
	return s
}

// DSN is the DSN that sends to this ingest, project 42.
func (s *Sentry) DSN() string {
	return "http://public@" + s.server.Listener.Addr().String() + "/42"
}

func (s *Sentry) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !envelopePath.MatchString(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	events, err := decodeEnvelope(raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.envelopes = append(s.envelopes, raw)
	s.all = append(s.all, events...)
	s.mu.Unlock()
	for _, ev := range events {
		s.events <- ev
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{}`)
}

// decodeEnvelope reads an envelope: a header line, then items, each a header line and a payload of
// the header's length (or up to the next newline when it gives none). It returns the event items.
func decodeEnvelope(raw []byte) ([]Event, error) {
	rd := bufio.NewReader(bytes.NewReader(raw))
	if _, err := rd.ReadBytes('\n'); err != nil {
		return nil, fmt.Errorf("envelope header: %w", err)
	}
	var events []Event
	for {
		line, err := rd.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) == 0 && err == io.EOF {
			return events, nil
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		var h struct {
			Type   string `json:"type"`
			Length *int   `json:"length"`
		}
		if err := json.Unmarshal(line, &h); err != nil {
			return nil, fmt.Errorf("item header %q: %w", line, err)
		}
		var payload []byte
		if h.Length != nil {
			payload = make([]byte, *h.Length)
			if _, err := io.ReadFull(rd, payload); err != nil {
				return nil, fmt.Errorf("item payload: %w", err)
			}
			rd.ReadByte() // the newline after the payload, absent at the end
		} else {
			payload, _ = rd.ReadBytes('\n')
			payload = bytes.TrimRight(payload, "\n")
		}
		if h.Type != "event" {
			continue
		}
		var ev Event
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("event: %w", err)
		}
		ev.Raw = payload
		events = append(events, ev)
	}
}

// Next returns the next event received, failing tb if none comes within wait.
func (s *Sentry) Next(tb testing.TB, wait time.Duration) Event {
	tb.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-time.After(wait):
		tb.Fatalf("no Sentry event within %s", wait)
		return Event{}
	}
}

// WaitFor returns the first event received from now on that match accepts, failing tb if none
// comes within wait. Events it passes over are still in Events.
func (s *Sentry) WaitFor(tb testing.TB, wait time.Duration, match func(Event) bool) Event {
	tb.Helper()
	deadline := time.After(wait)
	for {
		select {
		case ev := <-s.events:
			if match(ev) {
				return ev
			}
		case <-deadline:
			tb.Fatalf("no matching Sentry event within %s; received %d events", wait, len(s.Events()))
			return Event{}
		}
	}
}

// Events returns every event received so far.
func (s *Sentry) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.all...)
}

// Envelopes returns every envelope received so far, as sent.
func (s *Sentry) Envelopes() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.envelopes...)
}

// Blackhole returns the DSN of an ingest that accepts connections and never answers: Sentry
// unreachable in the way that costs a client most, a timeout per attempt.
func Blackhole(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://public@" + ln.Addr().String() + "/42"
}

// Webhook is a loopback webhook receiver. It answers FailFirst requests with 503, then 200.
type Webhook struct {
	server    *httptest.Server
	received  chan Delivery
	attempted chan struct{}

	mu        sync.Mutex
	failFirst int
	attempts  int
	bodies    [][]byte
}

// Delivery is one request the receiver accepted.
type Delivery struct {
	Payload map[string]any
	Body    []byte
	// Attempt is the request's number among all the receiver got, failed ones included.
	Attempt int
}

// NewWebhook starts a receiver that fails the first failFirst requests; it stops when tb ends.
func NewWebhook(tb testing.TB, failFirst int) *Webhook {
	tb.Helper()
	h := &Webhook{received: make(chan Delivery, 1000), attempted: make(chan struct{}, 10000), failFirst: failFirst}
	h.server = httptest.NewServer(http.HandlerFunc(h.serve))
	tb.Cleanup(h.server.Close)
	return h
}

// URL is the receiver's address, with a path and query like a Slack webhook's, whose token is the
// secret returned with it.
func (h *Webhook) URL() (url, secret string) {
	secret = "T0SECRETwebhookTOKEN42xyz"
	return h.server.URL + "/services/T000/B000/" + secret + "?token=" + secret, secret
}

func (h *Webhook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.attempts++
	n := h.attempts
	fail := n <= h.failFirst
	h.bodies = append(h.bodies, body)
	h.mu.Unlock()
	defer func() { h.attempted <- struct{}{} }()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a JSON POST", http.StatusBadRequest)
		return
	}
	if fail {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.received <- Delivery{Payload: p, Body: body, Attempt: n}
	w.Write([]byte("ok"))
}

// Next returns the next delivery, failing tb if none comes within wait.
func (h *Webhook) Next(tb testing.TB, wait time.Duration) Delivery {
	tb.Helper()
	select {
	case d := <-h.received:
		return d
	case <-time.After(wait):
		tb.Fatalf("no webhook delivery within %s (%d requests received)", wait, h.Attempts())
		return Delivery{}
	}
}

// Poll returns the next delivery if one comes within wait, and false if none does.
func (h *Webhook) Poll(wait time.Duration) (Delivery, bool) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case d := <-h.received:
		return d, true
	case <-t.C:
		return Delivery{}, false
	}
}

// AwaitAttempt waits until the receiver has answered one more request, failed or not, failing tb if
// none comes within wait.
func (h *Webhook) AwaitAttempt(tb testing.TB, wait time.Duration) {
	tb.Helper()
	select {
	case <-h.attempted:
	case <-time.After(wait):
		tb.Fatalf("no webhook request within %s", wait)
	}
}

// Attempts is how many requests the receiver got, failed ones included.
func (h *Webhook) Attempts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attempts
}

// Bodies returns every request body received, failed ones included.
func (h *Webhook) Bodies() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies...)
}

// Alert returns the delivery's structured alert object.
func (d Delivery) Alert() map[string]any {
	a, _ := d.Payload["alert"].(map[string]any)
	return a
}

// Number reads a JSON number field of m as an int (0 when absent).
func Number(m map[string]any, key string) int {
	switch v := m[key].(type) {
	case float64:
		return int(v)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}
