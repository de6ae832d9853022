package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/feed"
)

// sseEvent is one event a stream sent.
type sseEvent struct {
	ID    string
	Event string
	Data  eventBody
}

// sseStream is a client of GET /api/admin/security/stream, read as the dashboard's fetch does.
type sseStream struct {
	Header   http.Header
	events   chan sseEvent
	comments chan string
	ended    chan struct{} // closed when the server ends the stream
	cancel   context.CancelFunc
	LastID   string // of the last event received through next
}

// openStream connects to the stream as access, resuming after lastEventID unless it is "".
func (e *env) openStream(tb testing.TB, access, lastEventID string) *sseStream {
	tb.Helper()
	return openStreamAt(tb, e.URL, access, lastEventID)
}

// openStreamAt is openStream on the server at base.
func openStreamAt(tb testing.TB, base, access, lastEventID string) *sseStream {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/admin/security/stream", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+access)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		res.Body.Close()
		tb.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &sseStream{Header: res.Header, events: make(chan sseEvent, 100000), comments: make(chan string, 1000),
		ended: make(chan struct{}), cancel: cancel}
	tb.Cleanup(s.Close)
	go func() {
		defer close(s.ended)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var cur sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.Event != "" {
					if err := json.Unmarshal([]byte(data), &cur.Data); err != nil {
						panic("stream data is not JSON: " + data)
					}
					s.events <- cur
				}
				cur, data = sseEvent{}, ""
			case strings.HasPrefix(line, ":"):
				select {
				case s.comments <- strings.TrimSpace(line[1:]):
				default:
				}
			case strings.HasPrefix(line, "id: "):
				cur.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				data += line[6:]
			}
		}
	}()
	return s
}

// Close disconnects the client.
func (s *sseStream) Close() { s.cancel() }

// next returns the next event, failing if none arrives within wait.
func (s *sseStream) next(tb testing.TB, wait time.Duration) sseEvent {
	tb.Helper()
	select {
	case ev := <-s.events:
		s.LastID = ev.ID
		return ev
	case <-time.After(wait):
		tb.Fatalf("no event within %v", wait)
		return sseEvent{}
	}
}

// none fails if an event arrives within wait.
func (s *sseStream) none(tb testing.TB, wait time.Duration) {
	tb.Helper()
	select {
	case ev := <-s.events:
		tb.Fatalf("unexpected event %s %s (seq %d)", ev.Data.EventType, ev.Data.ID, ev.Data.Seq)
	case <-time.After(wait):
	}
}

// failLogin records a failed_login for email through the API.
func (e *env) failLogin(tb testing.TB, email, ip string) {
	tb.Helper()
	res := e.do(tb, "POST", "/api/auth/login", map[string]string{"email": email, "password": "wrong password!"}, "X-Forwarded-For", ip)
	if res.Status != 401 {
		tb.Fatalf("wrong password: %d %s", res.Status, res.Body)
	}
}

func TestStreamSendsACommittedEventWithinASecond(t *testing.T) {
	e := newEnv(t)
	boss := e.admin(t, "stream-boss@example.com")
	s := e.openStream(t, boss.AccessToken, "")
	if cc := s.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q", cc)
	}
	victim := e.signup(t, "stream-victim@example.com")
	ev := s.next(t, time.Second) // the signup
	if ev.Event != "security" || ev.Data.EventType != "signup" || *ev.Data.UserID != victim.User.ID {
		t.Fatalf("first event %+v, want the signup", ev)
	}
	start := time.Now()
	e.failLogin(t, "stream-victim@example.com", "203.0.113.77")
	ev = s.next(t, time.Second)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("failed login reached the stream after %v", took)
	}
	if ev.Data.EventType != "failed_login" || *ev.Data.IPAddress != "203.0.113.77" || ev.Data.Seq <= 0 || ev.ID == "" {
		t.Fatalf("event %+v, want the failed login with its seq and an id", ev)
	}
	stored := e.events(t, "failed_login")
	if len(stored) != 1 || stored[0].ID != ev.Data.ID || stored[0].Seq != ev.Data.Seq {
		t.Fatalf("streamed %s/%d, stored %+v", ev.Data.ID, ev.Data.Seq, stored)
	}
	s.none(t, 100*time.Millisecond)
}

// mark records an event straight into the store and reads each stream up to it: whatever a stream
// had to send before is consumed, so what follows is the test's own.
func (e *env) mark(tb testing.TB, streams ...*sseStream) {
	tb.Helper()
	ev := &fluxauth.SecurityEvent{Type: "test_marker"}
	if err := e.Store.InsertEvents(context.Background(), ev); err != nil {
		tb.Fatal(err)
	}
	e.Recorder.Committed(ev) // the wake serve's SQLite feed gets from the recorder
	deadline := time.Now().Add(2 * time.Second)
	for _, s := range streams {
		for s.next(tb, time.Until(deadline)).Data.ID != ev.ID {
		}
	}
}

// receiveIDs reads n events from s and returns their event ids in the order received.
func (s *sseStream) receiveIDs(tb testing.TB, n int) []string {
	tb.Helper()
	var ids []string
	for range n {
		ids = append(ids, s.next(tb, time.Second).Data.ID)
	}
	return ids
}

func TestStreamResumesAfterLastEventIDWithoutGapsOrDuplicates(t *testing.T) {
	e := newEnv(t)
	boss := e.admin(t, "resume-boss@example.com")
	first := e.openStream(t, boss.AccessToken, "")
	e.mark(t, first)
	for range 3 {
		e.failLogin(t, "resume-boss@example.com", "198.51.100.1")
	}
	seen := first.receiveIDs(t, 3)
	first.Close()
	// While the dashboard is away.
	for range 3 {
		e.failLogin(t, "resume-boss@example.com", "198.51.100.2")
	}
	missed := eventIDs(e.events(t, "failed_login")[:3]) // newest first
	slices.Reverse(missed)

	again := e.openStream(t, boss.AccessToken, first.LastID)
	if got := again.receiveIDs(t, 3); !slices.Equal(got, missed) {
		t.Fatalf("resumed with %v, want exactly the missed %v (seen before: %v)", got, missed, seen)
	}
	e.failLogin(t, "resume-boss@example.com", "198.51.100.3")
	if ev := again.next(t, time.Second); *ev.Data.IPAddress != "198.51.100.3" {
		t.Fatalf("live after the catch-up: %+v", ev.Data)
	}
	again.none(t, 200*time.Millisecond)

	for _, bad := range []string{"yesterday", "5:6", "-1"} {
		res := e.do(t, "GET", "/api/admin/security/stream", nil, append(bearer(boss.AccessToken), "Last-Event-ID", bad)...)
		if res.Status != 422 || res.errorCode(t) != "validation_failed" {
			t.Fatalf("Last-Event-ID %q: %d %s", bad, res.Status, res.Body)
		}
	}
	// An id beyond the end of this log (another database's) starts at the end rather than never.
	future := e.openStream(t, boss.AccessToken, "999999")
	e.failLogin(t, "resume-boss@example.com", "198.51.100.4")
	if ev := future.next(t, time.Second); *ev.Data.IPAddress != "198.51.100.4" {
		t.Fatalf("after a future id: %+v", ev.Data)
	}
}

func eventIDs(evs []*fluxauth.SecurityEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func TestStreamSendsHeartbeatsWhileIdle(t *testing.T) {
	e := newEnv(t, withFeed(feed.Config{}, 50*time.Millisecond))
	boss := e.admin(t, "beat-boss@example.com")
	s := e.openStream(t, boss.AccessToken, "")
	beats := 0
	timeout := time.After(time.Second)
	for beats < 3 {
		select {
		case c := <-s.comments:
			if c == "heartbeat" {
				beats++
			}
		case <-timeout:
			t.Fatalf("%d heartbeats in a second at a 50ms interval", beats)
		}
	}
}

// serveWith serves e's handler with srv (its timeouts, its shutdown) and returns its URL.
func serveWith(t *testing.T, e *env, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Handler = e.App.Handler()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestStreamOutlivesTheServersReadAndWriteTimeouts(t *testing.T) {
	e := newEnv(t, withFeed(feed.Config{}, 50*time.Millisecond))
	boss := e.admin(t, "timeout-boss@example.com")
	// serve sets ReadTimeout and WriteTimeout; scaled down here, the stream must outlast both.
	base := serveWith(t, e, &http.Server{ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	s := openStreamAt(t, base, boss.AccessToken, "")
	time.Sleep(700 * time.Millisecond)
	e.failLogin(t, "timeout-boss@example.com", "198.51.100.9")
	for {
		if ev := s.next(t, time.Second); ev.Data.EventType == "failed_login" {
			return
		}
	}
}

func TestShutdownEndsOpenStreamsPromptly(t *testing.T) {
	e := newEnv(t)
	boss := e.admin(t, "shutdown-boss@example.com")
	streams := make([]*sseStream, 5)
	for i := range streams {
		streams[i] = openStreamAt(t, e.URL, boss.AccessToken, "")
	}
	start := time.Now()
	if err := e.App.Shutdown(); err != nil {
		t.Fatalf("shutdown waited for the streams: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("shutdown took %v with streams open", took)
	}
	for i, s := range streams {
		select {
		case <-s.ended:
		case <-time.After(time.Second):
			t.Fatalf("stream %d still open after shutdown", i)
		}
	}
}
