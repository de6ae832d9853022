package api_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// admin signs an account up and makes it an admin, as "fluxauth users set-type" does.
func (e *env) admin(tb testing.TB, email string) *authResponse {
	tb.Helper()
	ar := e.signup(tb, email)
	if err := e.Store.SetUserType(context.Background(), email, "admin", e.Clock.Now()); err != nil {
		tb.Fatal(err)
	}
	// The signup's event is written, and handed out by the feed, before the admin is used: a stream
	// opened next starts after it.
	if err := e.Recorder.Flush(context.Background()); err != nil {
		tb.Fatal(err)
	}
	last, err := e.Store.LastEventSeq(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	e.Hub.Wake()
	for deadline := time.Now().Add(10 * time.Second); e.Hub.Delivered() < last; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("the feed handed out seq %d, not the admin's signup at %d", e.Hub.Delivered(), last)
		}
	}
	return ar
}

// eventBody is an event as the admin API shows it, in lists and in the stream.
type eventBody struct {
	ID        string         `json:"id"`
	Seq       int64          `json:"seq"`
	EventType string         `json:"eventType"`
	Severity  string         `json:"severity"`
	UserID    *string        `json:"userId"`
	IPAddress *string        `json:"ipAddress"`
	Metadata  map[string]any `json:"metadata"`
	CreatedAt time.Time      `json:"createdAt"`
}

type eventsPage struct {
	Events     []eventBody `json:"events"`
	NextCursor *string     `json:"nextCursor"`
}

func (e *env) listEvents(tb testing.TB, access string, q url.Values) *eventsPage {
	tb.Helper()
	e.Recorder.Flush(context.Background())
	res := e.do(tb, "GET", "/api/admin/security/events?"+q.Encode(), nil, bearer(access)...)
	if res.Status != 200 {
		tb.Fatalf("events: %d %s", res.Status, res.Body)
	}
	var p eventsPage
	res.json(tb, &p)
	return &p
}

func TestAdminAPIIsForAdminsOnly(t *testing.T) {
	e := newEnv(t)
	user := e.signup(t, "user@example.com")
	for _, path := range []string{"/api/admin/security/events", "/api/admin/security/summary"} {
		if res := e.do(t, "GET", path, nil, bearer(user.AccessToken)...); res.Status != 403 || res.errorCode(t) != "forbidden" {
			t.Fatalf("%s as a user: %d %s", path, res.Status, res.Body)
		}
		if res := e.do(t, "GET", path, nil); res.Status != 401 {
			t.Fatalf("%s anonymous: %d", path, res.Status)
		}
	}
	if res := e.do(t, "POST", "/api/admin/users/"+user.User.ID+"/revoke-sessions", nil, bearer(user.AccessToken)...); res.Status != 403 {
		t.Fatalf("revoke as a user: %d", res.Status)
	}
	boss := e.admin(t, "boss@example.com")
	if res := e.do(t, "GET", "/api/admin/security/summary", nil, bearer(boss.AccessToken)...); res.Status != 200 {
		t.Fatalf("admin: %d %s", res.Status, res.Body)
	}
	// Demotion takes effect at once, not when the access token expires.
	e.Store.SetUserType(context.Background(), "boss@example.com", "client", e.Clock.Now())
	if res := e.do(t, "GET", "/api/admin/security/summary", nil, bearer(boss.AccessToken)...); res.Status != 403 {
		t.Fatalf("demoted admin: %d", res.Status)
	}
}

func TestAdminEventFilters(t *testing.T) {
	e := newEnv(t)
	boss := e.admin(t, "filters@example.com")
	victim := e.signup(t, "victim2@example.com")
	e.do(t, "POST", "/api/auth/login", map[string]string{"email": "victim2@example.com", "password": "wrong one!"}, "X-Forwarded-For", "203.0.113.50")
	e.Clock.Advance(time.Minute)
	mid := e.Clock.Now()
	e.do(t, "POST", "/api/auth/login", map[string]string{"email": "ghost@example.com", "password": "wrong one!"}, "X-Forwarded-For", "203.0.113.51")

	cases := []struct {
		name  string
		q     url.Values
		check func(p *eventsPage) bool
	}{
		{"by type", url.Values{"type": {"failed_login"}}, func(p *eventsPage) bool { return len(p.Events) == 2 }},
		{"by severity", url.Values{"severity": {"warning"}}, func(p *eventsPage) bool { return len(p.Events) == 2 }},
		{"by user", url.Values{"userId": {victim.User.ID}}, func(p *eventsPage) bool {
			return len(p.Events) == 2 && p.Events[0].EventType == "failed_login" && p.Events[1].EventType == "signup"
		}},
		{"by ip", url.Values{"ip": {"203.0.113.51"}}, func(p *eventsPage) bool { return len(p.Events) == 1 && p.Events[0].UserID == nil }},
		{"since", url.Values{"since": {mid.Format(time.RFC3339Nano)}}, func(p *eventsPage) bool { return len(p.Events) == 1 }},
		{"until", url.Values{"until": {mid.Format(time.RFC3339Nano)}, "type": {"failed_login"}}, func(p *eventsPage) bool { return len(p.Events) == 1 }},
		{"newest first", url.Values{}, func(p *eventsPage) bool {
			for i := 1; i < len(p.Events); i++ {
				if p.Events[i].CreatedAt.After(p.Events[i-1].CreatedAt) {
					return false
				}
			}
			return len(p.Events) == 4 && p.NextCursor == nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if p := e.listEvents(t, boss.AccessToken, c.q); !c.check(p) {
				t.Fatalf("%+v", p)
			}
		})
	}
	for _, bad := range []url.Values{{"limit": {"501"}}, {"limit": {"0"}}, {"since": {"yesterday"}}, {"cursor": {"garbage"}}, {"severity": {"loud"}}} {
		res := e.do(t, "GET", "/api/admin/security/events?"+bad.Encode(), nil, bearer(boss.AccessToken)...)
		if res.Status != 422 || res.errorCode(t) != "validation_failed" {
			t.Fatalf("%v: %d %s", bad, res.Status, res.Body)
		}
	}
}

func TestAdminEventPaginationIsStableWhileEventsArrive(t *testing.T) {
	e := newEnv(t)
	boss := e.admin(t, "pages@example.com")
	var seed []*fluxauth.SecurityEvent
	for i := 0; i < 130; i++ {
		seed = append(seed, &fluxauth.SecurityEvent{ID: uuid.NewString(), Type: "failed_login", Severity: "warning",
			CreatedAt: e.Clock.Now().Add(-time.Duration(i) * time.Second)})
	}
	if err := e.Store.InsertEvents(context.Background(), seed...); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // newer events keep arriving while the admin pages through
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := e.Store.InsertEvents(context.Background(), &fluxauth.SecurityEvent{ID: uuid.NewString(), Type: "failed_login",
				Severity: "warning", CreatedAt: e.Clock.Now().Add(time.Hour + time.Duration(i)*time.Millisecond)})
			if err != nil {
				t.Errorf("InsertEvents: %v", err) // not Fatal: this runs off the test goroutine
				return
			}
		}
	}()
	// Stopped on every exit, a failed check included: left running it would outlive the store.
	var stopOnce sync.Once
	stopWriter := func() { stopOnce.Do(func() { close(stop); wg.Wait() }) }
	defer stopWriter()
	q := url.Values{"type": {"failed_login"}, "limit": {"50"}, "until": {e.Clock.Now().Add(time.Second).Format(time.RFC3339Nano)}}
	seen := map[string]bool{}
	pages := 0
	for {
		p := e.listEvents(t, boss.AccessToken, q)
		pages++
		for _, ev := range p.Events {
			if seen[ev.ID] {
				t.Fatalf("event %s on two pages", ev.ID)
			}
			seen[ev.ID] = true
		}
		if p.NextCursor == nil {
			break
		}
		q.Set("cursor", *p.NextCursor)
	}
	stopWriter()
	if len(seen) != 130 || pages != 3 {
		t.Fatalf("saw %d events in %d pages, want 130 in 3", len(seen), pages)
	}
	for _, ev := range seed {
		if !seen[ev.ID] {
			t.Fatalf("event %s skipped", ev.ID)
		}
	}
}

func TestAdminSummary(t *testing.T) {
	e := newEnv(t)
	boss := e.admin(t, "summary@example.com")
	for i := 0; i < 3; i++ {
		e.do(t, "POST", "/api/auth/login", map[string]string{"email": fmt.Sprintf("x%d@example.com", i), "password": "wrong one!"}, "X-Forwarded-For", "203.0.113.9")
	}
	e.do(t, "POST", "/api/auth/login", map[string]string{"email": "y@example.com", "password": "wrong one!"}, "X-Forwarded-For", "198.51.100.4")
	e.Recorder.Flush(context.Background())
	res := e.do(t, "GET", "/api/admin/security/summary?window=1h", nil, bearer(boss.AccessToken)...)
	var sum struct {
		ByType     map[string]int `json:"byType"`
		BySeverity map[string]int `json:"bySeverity"`
		TopIPs     []struct {
			IP    string `json:"ip"`
			Count int    `json:"count"`
		} `json:"topFailedLoginIps"`
		ActiveSessions int `json:"activeSessions"`
	}
	res.json(t, &sum)
	if sum.ByType["failed_login"] != 4 || sum.ByType["signup"] != 1 || sum.BySeverity["warning"] != 4 || sum.BySeverity["info"] != 1 {
		t.Fatalf("counts %s", res.Body)
	}
	if len(sum.TopIPs) != 2 || sum.TopIPs[0].IP != "203.0.113.9" || sum.TopIPs[0].Count != 3 || sum.ActiveSessions != 1 {
		t.Fatalf("summary %s", res.Body)
	}
	e.Clock.Advance(2 * time.Hour)
	boss = e.mustRefresh(t, boss.RefreshToken)
	res = e.do(t, "GET", "/api/admin/security/summary?window=1h", nil, bearer(boss.AccessToken)...)
	sum.ByType = nil
	res.json(t, &sum)
	if len(sum.ByType) != 0 {
		t.Fatalf("old events counted: %s", res.Body)
	}
	if res := e.do(t, "GET", "/api/admin/security/summary?window=forever", nil, bearer(boss.AccessToken)...); res.Status != 422 {
		t.Fatalf("bad window: %d", res.Status)
	}
}

func TestAdminRevokesAUsersSessions(t *testing.T) {
	e := newEnv(t)
	boss := e.admin(t, "revoker@example.com")
	target := e.signup(t, "target@example.com")
	var second authResponse
	e.do(t, "POST", "/api/auth/login", map[string]string{"email": "target@example.com", "password": "correct horse battery"}).json(t, &second)
	if res := e.do(t, "POST", "/api/admin/users/"+target.User.ID+"/revoke-sessions", nil, bearer(boss.AccessToken)...); res.Status != 204 {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	for _, tok := range []string{target.AccessToken, second.AccessToken} {
		if res := e.do(t, "GET", "/api/auth/me", nil, bearer(tok)...); res.errorCode(t) != "session_revoked" {
			t.Fatalf("session survived: %s", res.Body)
		}
	}
	revoked := e.events(t, fluxauth.EventTokenRevoked)
	if len(revoked) != 2 || revoked[0].Metadata["by"] != "admin:"+boss.User.ID || revoked[0].Metadata["reason"] != "admin_revoked" {
		t.Fatalf("events %+v", revoked)
	}
	if res := e.do(t, "GET", "/api/auth/me", nil, bearer(boss.AccessToken)...); res.Status != 200 {
		t.Fatal("the admin's own session was ended")
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		if res := e.do(t, "POST", "/api/admin/users/"+id+"/revoke-sessions", nil, bearer(boss.AccessToken)...); res.Status != 404 {
			t.Fatalf("unknown user %s: %d", id, res.Status)
		}
	}
}
