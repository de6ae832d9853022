package api_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

const (
	chromeMac  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
	firefoxWin = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0"
)

// only returns the single event of typ, failing unless there is exactly one.
func (e *env) only(tb testing.TB, typ string) *fluxauth.SecurityEvent {
	tb.Helper()
	evs := e.events(tb, typ)
	if len(evs) != 1 {
		tb.Fatalf("%d %s events, want 1: %+v", len(evs), typ, evs)
	}
	return evs[0]
}

func TestSignupAndLoginSuccessAreRecorded(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "events@example.com")
	ev := e.only(t, fluxauth.EventSignup)
	if ev.UserID != ar.User.ID || ev.Severity != "info" || ev.IPAddress != "127.0.0.1" || ev.TokenID == "" || ev.CreatedAt.IsZero() {
		t.Fatalf("signup event %+v", ev)
	}
	e.do(t, "POST", "/api/auth/login", map[string]string{"email": "events@example.com", "password": "correct horse battery"},
		"User-Agent", chromeMac, "X-Forwarded-For", "198.51.100.7")
	ev = e.only(t, fluxauth.EventLoginSuccess)
	if ev.UserID != ar.User.ID || ev.IPAddress != "198.51.100.7" || ev.UserAgent != chromeMac || ev.Metadata["sessionId"] == "" {
		t.Fatalf("login event %+v", ev)
	}
}

func TestFailedLoginSaysWhyInMetadataOnly(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "victim@example.com")
	e.do(t, "POST", "/api/auth/login", map[string]string{"email": "victim@example.com", "password": "not the password"})
	e.do(t, "POST", "/api/auth/login", map[string]string{"email": "ghost@example.com", "password": "not the password"})
	evs := e.events(t, fluxauth.EventFailedLogin)
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	byReason := map[string]*fluxauth.SecurityEvent{}
	for _, ev := range evs {
		byReason[ev.Metadata["reason"].(string)] = ev
		if ev.Severity != "warning" {
			t.Fatalf("severity %s", ev.Severity)
		}
	}
	if byReason["wrong_password"] == nil || byReason["wrong_password"].UserID != ar.User.ID || byReason["unknown_email"] == nil || byReason["unknown_email"].UserID != "" {
		t.Fatalf("reasons %+v", byReason)
	}
}

func TestLoginFromANewDeviceWhileOthersAreActiveIsMultipleDeviceLogin(t *testing.T) {
	e := newEnv(t)
	e.signup(t, "devices@example.com", "deviceFingerprint", "fp-laptop")
	login := func(fp string) {
		res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "devices@example.com", "password": "correct horse battery", "deviceFingerprint": fp})
		if res.Status != 200 {
			t.Fatalf("login %d", res.Status)
		}
	}
	login("fp-laptop") // the same device again: not a new one
	if n := len(e.events(t, fluxauth.EventMultipleDeviceLogin)); n != 0 {
		t.Fatalf("same device counted as new: %d", n)
	}
	login("fp-phone")
	ev := e.only(t, fluxauth.EventMultipleDeviceLogin)
	if ev.Metadata["activeSessions"] != float64(2) {
		t.Fatalf("metadata %+v", ev.Metadata)
	}
}

func TestFingerprintMismatchRevokesByDefault(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "fp@example.com", "deviceFingerprint", "fp-original")
	res := e.refresh(t, ar.RefreshToken, "X-Device-Fingerprint", "fp-other")
	if res.Status != 401 || res.errorCode(t) != "refresh_token_revoked" {
		t.Fatalf("got %d %s", res.Status, res.Body)
	}
	mismatch := e.only(t, fluxauth.EventDeviceFingerprintMismatch)
	hijack := e.only(t, fluxauth.EventSessionHijackAttempt)
	revoked := e.only(t, fluxauth.EventTokenRevoked)
	if mismatch.Severity != "warning" || hijack.Severity != "critical" || revoked.Metadata["reason"] != "fingerprint_mismatch" {
		t.Fatalf("events %+v %+v %+v", mismatch, hijack, revoked)
	}
	if r := e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); r.errorCode(t) != "session_revoked" {
		t.Fatalf("session survived: %s", r.Body)
	}
}

func TestFingerprintMismatchUnderRecordPolicyOnlyRecords(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) { c.Account.FingerprintRevoke = false }))
	ar := e.signup(t, "fp2@example.com", "deviceFingerprint", "fp-original")
	res := e.do(t, "POST", "/api/auth/refresh", map[string]string{"refreshToken": ar.RefreshToken, "deviceFingerprint": "fp-other"})
	if res.Status != 200 {
		t.Fatalf("got %d %s", res.Status, res.Body)
	}
	if ev := e.only(t, fluxauth.EventDeviceFingerprintMismatch); ev.Metadata["policy"] != "record" {
		t.Fatalf("event %+v", ev)
	}
	if n := len(e.events(t, fluxauth.EventSessionHijackAttempt)); n != 0 {
		t.Fatal("record policy recorded a hijack")
	}
}

func TestSuspiciousTokenUsage(t *testing.T) {
	t.Run("access token of a revoked session presented again", func(t *testing.T) {
		e := newEnv(t)
		ar := e.signup(t, "s1@example.com")
		e.do(t, "POST", "/api/auth/logout", nil, bearer(ar.AccessToken)...)
		for i := 0; i < 3; i++ { // a client polling with its dead token is one finding per minute
			e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...)
		}
		if ev := e.only(t, fluxauth.EventSuspiciousTokenUsage); ev.Metadata["reason"] != "revoked_session_access_token" || ev.UserID != ar.User.ID {
			t.Fatalf("event %+v", ev)
		}
	})
	t.Run("refresh from a new IP and a new user agent at once", func(t *testing.T) {
		e := newEnv(t)
		res := e.do(t, "POST", "/api/auth/signup", map[string]string{"email": "s2@example.com", "password": "correct horse battery", "name": "S"},
			"User-Agent", chromeMac, "X-Forwarded-For", "198.51.100.1")
		var ar authResponse
		res.json(t, &ar)
		// Only the IP changes: a phone moving networks is normal.
		e.Clock.Advance(10 * time.Minute) // at a person's pace, so the refresh rate is not what trips
		next := e.refresh(t, ar.RefreshToken, "User-Agent", chromeMac, "X-Forwarded-For", "198.51.100.2")
		if n := len(e.events(t, fluxauth.EventSuspiciousTokenUsage)); n != 0 {
			t.Fatalf("a new IP alone was suspicious: %d", n)
		}
		var ar2 authResponse
		next.json(t, &ar2)
		e.Clock.Advance(10 * time.Minute)
		e.refresh(t, ar2.RefreshToken, "User-Agent", firefoxWin, "X-Forwarded-For", "203.0.113.9")
		ev := e.only(t, fluxauth.EventSuspiciousTokenUsage)
		if ev.Metadata["reason"] != "new_ip_and_user_agent" || ev.IPAddress != "203.0.113.9" || ev.Metadata["previousIp"] != "198.51.100.2" {
			t.Fatalf("event %+v", ev)
		}
	})
	t.Run("refreshes faster than the configured rate", func(t *testing.T) {
		e := newEnv(t, withConfig(func(c *config.Config) {
			c.Account.SuspiciousRefreshRate = ratelimit.Limit{Rate: 3, Period: time.Minute}
		}))
		ar := e.signup(t, "s3@example.com")
		rt := ar.RefreshToken
		for i := 0; i < 6; i++ {
			rt = e.mustRefresh(t, rt).RefreshToken
		}
		ev := e.only(t, fluxauth.EventSuspiciousTokenUsage) // once per window, not once per refresh
		if ev.Metadata["reason"] != "refresh_rate" {
			t.Fatalf("event %+v", ev)
		}
	})
}

func TestRateLimitExceededIsRecordedOncePerKeyPerWindow(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) { c.Rules = config.Default().Rules }))
	for i := 0; i < 8; i++ {
		e.do(t, "POST", "/api/auth/login", map[string]string{"email": "rl@example.com", "password": "wrong password"})
	}
	ev := e.only(t, fluxauth.EventRateLimitExceeded)
	if ev.Metadata["rule"] != "login:ipemail" || ev.IPAddress != "127.0.0.1" {
		t.Fatalf("event %+v", ev)
	}
	e.Clock.Advance(time.Minute + time.Second)
	for i := 0; i < 6; i++ {
		e.do(t, "POST", "/api/auth/login", map[string]string{"email": "rl@example.com", "password": "wrong password"})
	}
	if n := len(e.events(t, fluxauth.EventRateLimitExceeded)); n != 2 {
		t.Fatalf("%d events after a second window, want 2", n)
	}
}

func TestEventRowsCarryTheirContext(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "ctx@example.com")
	e.do(t, "DELETE", "/api/auth/sessions/"+sidOf(t, ar.AccessToken), nil, append(bearer(ar.AccessToken), "User-Agent", firefoxWin)...)
	ev := e.only(t, fluxauth.EventTokenRevoked)
	if ev.UserID != ar.User.ID || ev.TokenID == "" || ev.IPAddress != "127.0.0.1" || ev.UserAgent != firefoxWin ||
		ev.Metadata["reason"] != "user_revoked" || ev.Metadata["by"] != "user:"+ar.User.ID {
		t.Fatalf("event %+v", ev)
	}
}

// recordTenThousand sends 10,000 failed logins from concurrent clients, flushes the recorder (Close
// is the shutdown's, and would stop the running service), and counts the rows.
func recordTenThousand(t *testing.T, e *env) {
	t.Helper()
	var wg sync.WaitGroup
	const workers, each = 50, 200
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res, err := e.send("POST", "/api/auth/login", map[string]string{"email": fmt.Sprintf("load%d-%d@example.com", w, i), "password": "wrong password"})
				if err != nil {
					t.Errorf("login: %v", err) // not Fatal: this runs off the test goroutine
					return
				}
				if res.Status != 401 {
					t.Errorf("status %d %s", res.Status, res.Body)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if err := e.Recorder.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	total := 0
	f := fluxauth.EventFilter{Type: fluxauth.EventFailedLogin, Limit: 500}
	for {
		page, err := e.Store.ListEvents(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		total += len(page)
		if len(page) < f.Limit {
			break
		}
		f.BeforeTime, f.BeforeID = page[len(page)-1].CreatedAt, page[len(page)-1].ID
	}
	if total != workers*each {
		t.Fatalf("%d failed_login rows, want %d", total, workers*each)
	}
}

func TestTenThousandEventsFromConcurrentRequestsAreAllKeptOnSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	recordTenThousand(t, newEnv(t, withConfig(func(c *config.Config) { c.Rules = ratelimit.Rules{} })))
}
