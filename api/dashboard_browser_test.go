package api_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/token"
)

// browser is one headless chromium for a test. Every tab it opens is watched: console errors,
// uncaught exceptions, failed loads and Content-Security-Policy violations are collected, and a
// test asserts at the end that there were none.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
	requests map[context.Context][]*network.Request // every request each tab sent, by the tab's context
}

// browserTimeout bounds a whole browser test; stepTimeout one wait in it, so a page that never
// shows what is awaited fails with the step's name rather than at the test's deadline.
const (
	browserTimeout = 60 * time.Second
	stepTimeout    = 15 * time.Second
)

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := testenv.Chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800))
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{ctx: bctx, requests: map[context.Context][]*network.Request{}}
}

// reportCSPViolations runs in every document before the page's own scripts (DevTools-injected, so
// the CSP does not apply to it), and turns each violation into a console error the browser
// collects, in case the browser's own CSP message is missed.
const reportCSPViolations = `document.addEventListener('securitypolicyviolation', (e) =>
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') +
    ' at ' + e.sourceFile + ':' + e.lineNumber));`

// tab opens a new tab of the size given and watches it.
func (b *browser) tab(t *testing.T, width, height int64) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	console := chromedp.Console(ctx)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || m.Source == "security" {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.requests[ctx] = append(b.requests[ctx], ev.Request)
			b.mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: reportCSPViolations}); err != nil {
		t.Fatal(err)
	}
	b.do(t, ctx, "set the viewport", chromedp.EmulateViewport(width, height))
	return ctx
}

// do runs the steps within stepTimeout, failing t with what was being done.
func (b *browser) do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v\nbrowser problems so far: %q", what, err, b.seen())
	}
}

// eval evaluates a JavaScript expression in the tab.
func eval[T any](t *testing.T, b *browser, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v\nbrowser problems so far: %q", expr, err, b.seen())
	}
	return v
}

// until waits for a JavaScript condition to hold.
func (b *browser) until(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(sctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s (%s): %v\nbrowser problems so far: %q", what, cond, err, b.seen())
	}
}

func (b *browser) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// header returns a request's header by name, whatever its case (fetch sends them lower-case).
func header(r *network.Request, name string) any {
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// excuse forgets the problems logged since the first n that match: ones a test caused on purpose.
func (b *browser) excuse(n int, expected func(string) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.problems[:n:n]
	for _, p := range b.problems[n:] {
		if !expected(p) {
			kept = append(kept, p)
		}
	}
	b.problems = kept
}

// sent returns the requests the tab sent so far: another tab's, still open and refreshing on its
// own timers, are not this tab's doing.
func (b *browser) sent(tab context.Context) []*network.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*network.Request(nil), b.requests[tab]...)
}

// noProblems fails t if any tab logged an error or a CSP violation.
func (b *browser) noProblems(t *testing.T) {
	t.Helper()
	for _, p := range b.seen() {
		t.Errorf("browser reported: %s", p)
	}
}

// signIn fills the dashboard's sign-in form.
func (b *browser) signIn(t *testing.T, ctx context.Context, url, email, password string) {
	t.Helper()
	b.do(t, ctx, "open the dashboard",
		chromedp.Navigate(url+"/admin/"),
		chromedp.WaitVisible(chromedp.ID("signin-email")),
		chromedp.SendKeys(chromedp.ID("signin-email"), email),
		chromedp.SendKeys(chromedp.ID("signin-password"), password),
		chromedp.Click(chromedp.ID("signin-submit")))
}

// The dashboard, driven in a real browser against a real server: an admin signs in, sees a failed
// login made through the API arrive in the live feed, follows it to the user's page and revokes a
// session there, which the session's own access token then feels; a non-admin sees no data; and
// nothing is logged, refused by the CSP, or kept in the browser's storage.
func TestDashboardInBrowser(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t)
	e.admin(t, "boss@example.com")
	victim := e.signup(t, "victim@example.com")
	var sessions struct {
		Sessions []sessionJSON `json:"sessions"`
	}
	e.do(t, "GET", "/api/auth/sessions", nil, bearer(victim.AccessToken)...).json(t, &sessions)
	if len(sessions.Sessions) != 1 {
		t.Fatalf("victim sessions: %+v", sessions.Sessions)
	}
	sessionID := sessions.Sessions[0].ID

	admin := b.tab(t, 1280, 800)
	b.signIn(t, admin, e.URL, "boss@example.com", "correct horse battery")
	b.do(t, admin, "see the live view", chromedp.WaitVisible(chromedp.ID("feed-list")))
	b.until(t, admin, "the live stream to connect", `document.getElementById('stream-status').textContent === 'Live'`)
	b.until(t, admin, "the charts to draw", `document.querySelectorAll('#chart-types canvas').length > 0`)

	if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "victim@example.com", "password": "not the password"},
		"X-Forwarded-For", "198.51.100.23"); res.Status != http.StatusUnauthorized {
		t.Fatalf("failed login: %d %s", res.Status, res.Body)
	}
	failed := `#feed-list li[data-type="failed_login"]`
	b.do(t, admin, "see the failed login in the live feed", chromedp.WaitVisible(chromedp.CSS(failed)))
	if text := eval[string](t, b, admin, `document.querySelector('`+failed+`').textContent`); !strings.Contains(text, "198.51.100.23") ||
		!strings.Contains(text, "warning") {
		t.Errorf("failed login shown as %q: want its IP and its severity in words", text)
	}

	// The stream resumes behind the newest listed event and re-sends a window before it: each event
	// is still listed once.
	if dup := eval[string](t, b, admin, `(() => { const ids = [...document.querySelectorAll('#feed-list li')].map((li) => li.dataset.id);
		return ids.filter((id, i) => ids.indexOf(id) !== i).join(','); })()`); dup != "" {
		t.Errorf("events listed twice in the live feed: %s", dup)
	}

	// The connection drops; an event committed before the page reconnects still arrives, because the
	// page resumes from the last id it saw. The browser logs the cut stream as a network error: that
	// one is expected.
	logged := len(b.seen())
	e.closeClientConnections()
	http.DefaultClient.CloseIdleConnections() // the test's own, closed under it too
	if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "victim@example.com", "password": "still not it"},
		"X-Forwarded-For", "198.51.100.24"); res.Status != http.StatusUnauthorized {
		t.Fatalf("failed login: %d %s", res.Status, res.Body)
	}
	b.until(t, admin, "the event committed while disconnected", `[...document.querySelectorAll('#feed-list li')].some((li) => li.textContent.includes('198.51.100.24'))`)
	b.until(t, admin, "the stream to be live again", `document.getElementById('stream-status').textContent === 'Live'`)
	b.excuse(logged, func(p string) bool {
		return strings.Contains(p, "/api/admin/security/stream") && strings.Contains(p, "net::ERR_")
	})

	b.do(t, admin, "open the user's page from the event",
		chromedp.Click(chromedp.CSS(failed+` a[href="#/user/`+victim.User.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#sessions-body tr[data-session="`+sessionID+`"] button`)))
	b.do(t, admin, "revoke the session, confirming",
		chromedp.Click(chromedp.CSS(`#sessions-body tr[data-session="`+sessionID+`"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`dialog#confirm[open]`)),
		chromedp.Click(chromedp.ID("confirm-ok")))
	b.until(t, admin, "the revocation to be confirmed",
		`document.getElementById('user-action-status').textContent === 'Session revoked.' &&
		 !document.querySelector('#sessions-body tr[data-session="`+sessionID+`"]')`)
	res := e.do(t, "GET", "/api/auth/me", nil, bearer(victim.AccessToken)...)
	if res.Status != http.StatusUnauthorized || res.errorCode(t) != "session_revoked" {
		t.Fatalf("revoked session's access token: %d %s, want 401 session_revoked", res.Status, res.Body)
	}

	// A critical event (a spent refresh token replayed after the grace window) is pinned until
	// acknowledged.
	thief := e.signup(t, "stolen@example.com")
	next := thief.RefreshToken
	for range 2 { // two rotations: the first token is no longer the one a reissue would answer
		res := e.do(t, "POST", "/api/auth/refresh", map[string]string{"refreshToken": next})
		if res.Status != http.StatusOK {
			t.Fatalf("refresh: %d", res.Status)
		}
		var ar authResponse
		res.json(t, &ar)
		next = ar.RefreshToken
	}
	e.Clock.Advance(time.Minute)
	if res := e.do(t, "POST", "/api/auth/refresh", map[string]string{"refreshToken": thief.RefreshToken}); res.Status != http.StatusUnauthorized {
		t.Fatalf("replayed refresh: %d, want 401", res.Status)
	}
	pinned := `#pinned-list li[data-type="session_hijack_attempt"]`
	b.do(t, admin, "back to the live view", chromedp.Click(chromedp.ID("nav-live")))
	b.do(t, admin, "see the critical event pinned, and acknowledge it",
		chromedp.WaitVisible(chromedp.CSS(pinned)),
		chromedp.Click(chromedp.CSS(pinned+" button")),
		chromedp.WaitNotVisible(chromedp.ID("pinned")))

	// An IP's page, from the feed; then the feed filtered by type.
	b.do(t, admin, "open the IP's page from the feed",
		chromedp.Click(chromedp.CSS(`#feed-list a[href="#/ip/198.51.100.24"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#ip-events li[data-type="failed_login"]`)))
	if n := eval[int](t, b, admin, `document.querySelectorAll('#ip-events li').length`); n != 1 {
		t.Errorf("the IP's page lists %d events, want its 1 failed login", n)
	}
	b.do(t, admin, "filter the feed to failed logins",
		chromedp.Click(chromedp.ID("nav-live")),
		chromedp.SetValue(chromedp.ID("filter-type"), "failed_login"),
		chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)))
	b.until(t, admin, "only failed logins listed", `(() => { const li = [...document.querySelectorAll('#feed-list li')];
		return li.length === 2 && li.every((x) => x.dataset.type === 'failed_login'); })()`)

	// Only the device token is kept (TestDashboardSignsInWithItsDeviceTokenThroughALockout): no
	// access or refresh token, nothing else.
	if kept := eval[string](t, b, admin, `[Object.keys(localStorage).join(','), sessionStorage.length, document.cookie].join('|')`); kept != "fluxauth.deviceTokens|0|" {
		t.Errorf("the page kept something in the browser (localStorage keys|sessionStorage|cookies): %q", kept)
	}
	if stored := eval[string](t, b, admin, `localStorage.getItem('fluxauth.deviceTokens')`); strings.Contains(stored, "eyJ") ||
		!strings.Contains(stored, `"boss@example.com"`) {
		t.Errorf("localStorage holds %q: want the account's device token only", stored)
	}

	b.do(t, admin, "narrow the window to a phone's width", chromedp.EmulateViewport(390, 844))
	b.until(t, admin, "the page to fit a phone's width", `document.documentElement.scrollWidth <= window.innerWidth`)

	// A non-admin, in a tab of their own: the message, and not one admin request.
	user := b.tab(t, 1280, 800)
	b.signIn(t, user, e.URL, "victim@example.com", "correct horse battery")
	b.do(t, user, "see the refusal", chromedp.WaitVisible(chromedp.ID("view-denied")))
	if text := eval[string](t, b, user, `document.getElementById('denied-message').textContent`); !strings.Contains(text, "not an administrator") {
		t.Errorf("non-admin shown %q", text)
	}
	if n := eval[int](t, b, user, `document.querySelectorAll('#feed-list li, #user-results li, #sessions-body tr').length`); n != 0 {
		t.Errorf("non-admin's page shows %d rows of data", n)
	}

	var resumes []string
	for _, r := range b.sent(admin) {
		if strings.Contains(r.URL, "/api/admin/security/stream") {
			if auth, _ := header(r, "Authorization").(string); !strings.HasPrefix(auth, "Bearer ") {
				t.Errorf("the stream was requested without a Bearer Authorization header")
			}
			id, _ := header(r, "Last-Event-ID").(string)
			resumes = append(resumes, id)
		}
		if strings.Contains(r.URL, "token") || strings.Contains(r.URL, "eyJ") {
			t.Errorf("a token in a URL: %s", r.URL)
		}
	}
	if len(resumes) < 2 || resumes[len(resumes)-1] == "" {
		t.Errorf("stream requests' Last-Event-ID: %q; want a reconnection that resumes", resumes)
	}
	if len(b.sent(user)) == 0 {
		t.Errorf("no request recorded for the non-admin's tab: the check below would pass blind")
	}
	for _, r := range b.sent(user) {
		if strings.Contains(r.URL, "/api/admin/") {
			t.Errorf("the non-admin's page asked for %s", r.URL)
		}
	}
	b.noProblems(t)
}

var dashboardScreenshot = flag.String("dashboard.screenshot", "", "write the 1280×800 screenshot of the dashboard with sample data to this file (docs/dashboard.png)")

// TestDashboardScreenshot shows the dashboard an hour of busy traffic, checks it draws it without a
// problem at 1280×800, and takes docs/dashboard.png of it, kept only when asked:
//
//	go test ./api -run TestDashboardScreenshot -dashboard.screenshot=$PWD/docs/dashboard.png
func TestDashboardScreenshot(t *testing.T) {
	out := *dashboardScreenshot
	if out == "" {
		out = filepath.Join(t.TempDir(), "dashboard.png")
	}
	b := newBrowser(t)
	e := newEnv(t)
	e.admin(t, "security@example.com")
	seedDashboard(t, e)
	admin := b.tab(t, 1280, 800)
	b.signIn(t, admin, e.URL, "security@example.com", "correct horse battery")
	b.until(t, admin, "the feed and the charts", `document.querySelectorAll('#feed-list li').length > 10 &&
		document.querySelectorAll('#chart-failed canvas').length > 0 && document.getElementById('stream-status').textContent === 'Live'`)
	// A failed login made while the page watches arrives through the stream, as in real use.
	e.do(t, "POST", "/api/auth/login", map[string]string{"email": "mallory@example.com", "password": "letmein"}, "X-Forwarded-For", "203.0.113.66")
	b.do(t, admin, "see it", chromedp.WaitVisible(chromedp.CSS(`#feed-list li[data-type="failed_login"]`)))
	b.do(t, admin, "let the charts settle", chromedp.Sleep(2500*time.Millisecond))
	sctx, cancel := context.WithTimeout(admin, stepTimeout)
	defer cancel()
	shot, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(shot)); err != nil || cfg.Width != 1280 || cfg.Height != 800 {
		t.Fatalf("screenshot: %dx%d %v, want a 1280x800 PNG", cfg.Width, cfg.Height, err)
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	b.noProblems(t)
}

// seedDashboard gives the screenshot an hour of plausible traffic: steady sign-ins, and a
// password-spraying burst from two addresses ten minutes ago that the rate limiter ends, with a
// session hijack attempt among it.
func seedDashboard(t *testing.T, e *env) {
	t.Helper()
	ua := "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
	var users []*authResponse
	for i, email := range []string{"alice@example.com", "bob@example.com", "carol@example.com", "dan@example.com"} {
		users = append(users, e.signup(t, email))
		e.do(t, "POST", "/api/auth/login", map[string]string{"email": email, "password": "correct horse battery"},
			"X-Forwarded-For", fmt.Sprintf("192.0.2.%d", 10+i), "User-Agent", ua)
	}
	rng := rand.New(rand.NewPCG(15, 15))
	now := e.Clock.Now()
	var events []*fluxauth.SecurityEvent
	add := func(at time.Time, typ, sev string, u *authResponse, ip string, meta map[string]any) {
		ev := &fluxauth.SecurityEvent{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Severity: sev, IPAddress: ip,
			UserAgent: ua, Metadata: meta, CreatedAt: at}
		if u != nil {
			ev.UserID = u.User.ID
		}
		events = append(events, ev)
	}
	for m := 59; m >= 1; m-- {
		minute := now.Add(-time.Duration(m) * time.Minute)
		for range 2 + rng.IntN(4) {
			u := users[rng.IntN(len(users))]
			add(minute.Add(time.Duration(rng.IntN(60))*time.Second), "login_success", "info", u, fmt.Sprintf("192.0.2.%d", 10+rng.IntN(20)), nil)
		}
		if rng.IntN(3) == 0 {
			u := users[rng.IntN(len(users))]
			add(minute.Add(20*time.Second), "failed_login", "warning", u, "192.0.2.40", map[string]any{"reason": "wrong_password", "email": u.User.Email})
		}
		if rng.IntN(8) == 0 {
			add(minute.Add(40*time.Second), "signup", "info", nil, "192.0.2.77", nil)
		}
		if m >= 8 && m <= 16 { // the burst
			for range 6 + rng.IntN(8) {
				u := users[rng.IntN(2)]
				ip := "203.0.113.7"
				if rng.IntN(3) == 0 {
					ip = "198.51.100.9"
				}
				add(minute.Add(time.Duration(rng.IntN(60))*time.Second), "failed_login", "warning", u, ip,
					map[string]any{"reason": "wrong_password", "email": u.User.Email})
			}
			if m <= 13 {
				for range 3 + rng.IntN(5) {
					add(minute.Add(time.Duration(rng.IntN(60))*time.Second), "rate_limit_exceeded", "warning", nil, "203.0.113.7",
						map[string]any{"rule": "login_ip", "limit": "10/1m0s"})
				}
			}
		}
	}
	add(now.Add(-6*time.Minute), "session_hijack_attempt", "critical", users[1], "203.0.113.7",
		map[string]any{"reason": "refresh_token_reused"})
	add(now.Add(-30*time.Minute), "token_revoked", "info", users[2], "192.0.2.12", map[string]any{"reason": "logout"})
	if err := e.Store.InsertEvents(context.Background(), events...); err != nil {
		t.Fatal(err)
	}
}

// The page renews its access token with the refresh token before it expires: requests made after
// the first token's expiry go out with the new one and are answered, with no 401 on the way.
func TestDashboardRefreshesItsTokenBeforeExpiry(t *testing.T) {
	const ttl = 12 * time.Second // the page refreshes at 80% of a lifetime this short: after 9.6 s
	clock := testenv.NewClock(time.Now())
	b := newBrowser(t)
	e := newEnv(t, withClock(clock), withConfig(func(c *config.Config) { c.AccessTTL = ttl }))
	boss := e.admin(t, "refresher@example.com")
	admin := b.tab(t, 1280, 800)
	b.signIn(t, admin, e.URL, "refresher@example.com", "correct horse battery")
	b.until(t, admin, "the live stream to connect", `document.getElementById('stream-status').textContent === 'Live'`)

	clock.Advance(ttl * 2 / 3) // the first token has a third of its life left when the page renews it
	refreshed := func() bool {
		for _, r := range b.sent(admin) {
			if strings.HasSuffix(r.URL, "/api/auth/refresh") {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(ttl)
	for !refreshed() {
		if time.Now().After(deadline) {
			t.Fatalf("the page sent no refresh within the token's lifetime (%v)", ttl)
		}
		time.Sleep(100 * time.Millisecond)
	}
	clock.Advance(ttl/2 + token.DefaultLeeway) // the first token is now expired, past the leeway too; the renewed one is not
	if res := e.do(t, "GET", "/api/admin/security/summary", nil, bearer(boss.AccessToken)...); res.Status != http.StatusUnauthorized {
		t.Fatalf("the first token after its expiry: %d, want 401", res.Status)
	}
	b.do(t, admin, "search users after the first token expired",
		chromedp.Click(chromedp.ID("nav-users")),
		chromedp.SendKeys(chromedp.ID("user-query"), "refresher"),
		chromedp.Click(chromedp.CSS(`#user-search button[type="submit"]`)))
	b.until(t, admin, "the search's answer", `document.getElementById('user-results-status').textContent === '1 user found.'`)
	b.noProblems(t) // a 401 on the way would have been logged
}

// The page keeps its device token and sends it at sign-in, so whoever knows an admin's address
// cannot lock the admin out of the dashboard: after wrong passwords from elsewhere have locked the
// account, the page still signs in, counted on its token's own budget.
func TestDashboardSignsInWithItsDeviceTokenThroughALockout(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, threeStrikes)
	const email = "keeper@example.com"
	e.admin(t, email)
	first := b.tab(t, 1280, 800)
	b.signIn(t, first, e.URL, email, "correct horse battery")
	b.until(t, first, "the live stream to connect", `document.getElementById('stream-status').textContent === 'Live'`)
	b.do(t, first, "sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin-email")))

	e.lockOut(t, email) // wrong passwords from elsewhere; the right one is now refused there too

	again := b.tab(t, 1280, 800)
	b.signIn(t, again, e.URL, email, "correct horse battery")
	b.until(t, again, "the live stream to connect after the lockout", `document.getElementById('stream-status').textContent === 'Live'`)
	var logins []string
	for _, r := range b.sent(again) {
		if strings.HasSuffix(r.URL, "/api/auth/login") && r.Method == "POST" {
			var body []byte
			for _, p := range r.PostDataEntries {
				body = append(body, p.Bytes...)
			}
			logins = append(logins, string(body))
		}
	}
	if len(logins) != 1 || !strings.Contains(logins[0], `"deviceToken":"`) {
		t.Errorf("the second tab's sign-in requests: %q; want one carrying the device token", logins)
	}
	if used := e.eventsWhere(t, fluxauth.EventLoginSuccess, "deviceToken", "used"); len(used) != 1 {
		t.Errorf("%d logins through a device token, want the second tab's", len(used))
	}
	b.noProblems(t)
}

// The server ends the live stream when the access token it was opened with expires; the page
// reconnects with its renewed token and resumes from the last id it had, so an event committed
// while it reconnected is still shown.
func TestDashboardStreamReconnectsWithTheRenewedTokenAtExpiry(t *testing.T) {
	const ttl = 12 * time.Second // the page refreshes at 80% of a lifetime this short
	clock := testenv.NewClock(time.Now())
	b := newBrowser(t)
	e := newEnv(t, withClock(clock), withConfig(func(c *config.Config) { c.AccessTTL = ttl }))
	e.admin(t, "renewer@example.com")
	admin := b.tab(t, 1280, 800)
	b.signIn(t, admin, e.URL, "renewer@example.com", "correct horse battery")
	b.until(t, admin, "the live stream to connect", `document.getElementById('stream-status').textContent === 'Live'`)
	streams := func() []*network.Request {
		var out []*network.Request
		for _, r := range b.sent(admin) {
			if strings.HasSuffix(r.URL, "/api/admin/security/stream") {
				out = append(out, r)
			}
		}
		return out
	}
	opened := streams()
	if len(opened) != 1 {
		t.Fatalf("%d stream requests at sign-in, want 1", len(opened))
	}
	first, _ := header(opened[0], "Authorization").(string)

	clock.Advance(ttl * 2 / 3) // the page renews its token; its stream goes on with the first one
	deadline := time.Now().Add(ttl)
	for !slices.ContainsFunc(b.sent(admin), func(r *network.Request) bool { return strings.HasSuffix(r.URL, "/api/auth/refresh") }) {
		if time.Now().After(deadline) {
			t.Fatalf("the page sent no refresh within the token's lifetime (%v)", ttl)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.failLogin(t, "renewer@example.com", "198.51.100.61") // seen live: the page has an id to resume from
	b.until(t, admin, "the first failed login", `[...document.querySelectorAll('#feed-list li')].some((li) => li.textContent.includes('198.51.100.61'))`)

	clock.Advance(ttl/3 + time.Second) // past the first token's exp (the server ends its stream), not the renewed one's
	e.failLogin(t, "renewer@example.com", "198.51.100.62")
	b.until(t, admin, "the event committed around the reconnection", `[...document.querySelectorAll('#feed-list li')].some((li) => li.textContent.includes('198.51.100.62'))`)
	b.until(t, admin, "the stream to be live again", `document.getElementById('stream-status').textContent === 'Live'`)
	again := streams()
	if len(again) < 2 {
		t.Fatalf("%d stream requests: the page did not reconnect", len(again))
	}
	last := again[len(again)-1]
	if auth, _ := header(last, "Authorization").(string); auth == first || !strings.HasPrefix(auth, "Bearer ") {
		t.Errorf("the stream reconnected with the expired token")
	}
	if id, _ := header(last, "Last-Event-ID").(string); id == "" {
		t.Errorf("the stream reconnected without Last-Event-ID")
	}
	b.noProblems(t)
}

// The cutover's progress on the dashboard: the last hour's legacy token exchanges, counted in a
// tile and charted per minute, so the team sees when the old tokens are gone.
func TestDashboardCountsLegacyTokenExchanges(t *testing.T) {
	b := newBrowser(t)
	e := legacyEnv(t)
	e.admin(t, "boss@example.com")
	for _, id := range []string{"123", "124"} {
		e.legacyUser(t, id, "legacy-"+id+"@example.com", fluxauth.UserTypeClient)
		e.mustExchange(t, legacyToken(t, legacyJWTSecret, legacyClaims(id, e.Clock.Now().Add(-time.Hour), 7*24*time.Hour)))
	}
	admin := b.tab(t, 1280, 800)
	b.signIn(t, admin, e.URL, "boss@example.com", "correct horse battery")
	b.until(t, admin, "the exchanges to be counted", `document.getElementById('tile-legacy').textContent === '2'`)
	label := eval[string](t, b, admin, `document.getElementById('chart-legacy').getAttribute('aria-label')`)
	if !strings.HasPrefix(label, "Legacy token exchanges: 2 in the last hour") {
		t.Errorf("the exchanges' chart says %q", label)
	}
	if n := eval[int](t, b, admin, `document.querySelectorAll('#chart-legacy canvas').length`); n == 0 {
		t.Error("the exchanges' chart was not drawn")
	}
	b.noProblems(t)
}
