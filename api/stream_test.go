package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
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
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.URL+"/api/admin/security/stream", nil)
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
