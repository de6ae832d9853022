package api_test

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

func TestDashboardEndpointsAreForAdminsOnly(t *testing.T) {
	e := newEnv(t)
	user := e.signup(t, "plain@example.com")
	sid := sidOf(t, user.AccessToken)
	boss := e.admin(t, "dash-boss@example.com")
	endpoints := []struct{ method, path string }{
		{"GET", "/api/admin/security/stream"},
		{"GET", "/api/admin/security/timeseries"},
		{"GET", "/api/admin/users?query=plain"},
		{"GET", "/api/admin/users/" + user.User.ID},
		{"DELETE", "/api/admin/sessions/" + sid},
		{"POST", "/api/admin/users/" + user.User.ID + "/unlock"},
		{"POST", "/api/admin/users/" + user.User.ID + "/revoke-sessions"},
	}
	refused := func(who, access string, status int, code string) {
		t.Helper()
		for _, ep := range endpoints {
			var headers []string
			if access != "" {
				headers = bearer(access)
			}
			if res := e.do(t, ep.method, ep.path, nil, headers...); res.Status != status || res.errorCode(t) != code {
				t.Errorf("%s %s as %s: %d %s, want %d %s", ep.method, ep.path, who, res.Status, res.Body, status, code)
			}
		}
	}
	refused("nobody", "", 401, "invalid_token")
	refused("a user", user.AccessToken, 403, "forbidden")
	// The admin gets through; the GETs are enough to show it (the actions have their own tests).
	e.openStream(t, boss.AccessToken, "").Close()
	for _, ep := range endpoints[1:4] {
		if res := e.do(t, ep.method, ep.path, nil, bearer(boss.AccessToken)...); res.Status != 200 {
			t.Errorf("%s %s as an admin: %d %s", ep.method, ep.path, res.Status, res.Body)
		}
	}
	// Demotion takes effect at once, with the same access token.
	if err := e.Store.SetUserType(context.Background(), "dash-boss@example.com", "client", e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	refused("a demoted admin", boss.AccessToken, 403, "forbidden")
	// None of the refused actions did anything.
	if got := e.sessions(t, user.AccessToken); len(got) != 1 || got[0].ID != sid {
		t.Fatalf("the user's sessions after refused admin actions: %+v", got)
	}
	if evs := e.events(t, "account_unlocked"); len(evs) != 0 {
		t.Fatalf("a refused unlock was recorded: %+v", evs)
	}
}

type seriesBody struct {
	Window            string           `json:"window"`
	Step              string           `json:"step"`
	Start             time.Time        `json:"start"`
	Buckets           []time.Time      `json:"buckets"`
	Series            map[string][]int `json:"series"`
	TopFailedLoginIPs []struct {
		IP    string `json:"ip"`
		Count int    `json:"count"`
	} `json:"topFailedLoginIps"`
	TopTargetedUsers []struct {
		UserID string `json:"userId"`
		Email  string `json:"email"`
		Count  int    `json:"count"`
	} `json:"topTargetedUsers"`
	ActiveSessions int `json:"activeSessions"`
}

func TestTimeseriesCountsEachTypePerStepUpToNow(t *testing.T) {
	// A minute boundary and a half: the current bucket is the half-minute since 12:00.
	clock := time.Date(2025, 3, 1, 12, 0, 30, 0, time.UTC)
	e := newEnv(t, withClock(testenv.NewClock(clock.Add(-3*time.Minute))))
	boss := e.admin(t, "series-boss@example.com") // a signup at 11:57:30
	victim := e.signup(t, "series-victim@example.com")
	e.Clock.Advance(time.Minute) // 11:58:30
	e.failLogin(t, "series-victim@example.com", "198.51.100.7")
	e.failLogin(t, "series-victim@example.com", "198.51.100.7")
	e.Clock.Advance(2 * time.Minute) // 12:00:30
	e.failLogin(t, "series-victim@example.com", "198.51.100.8")
	e.Recorder.Flush(context.Background())

	res := e.do(t, "GET", "/api/admin/security/timeseries?window=3m&step=1m", nil, bearer(boss.AccessToken)...)
	if res.Status != 200 {
		t.Fatalf("timeseries: %d %s", res.Status, res.Body)
	}
	var got seriesBody
	res.json(t, &got)
	start := time.Date(2025, 3, 1, 11, 58, 0, 0, time.UTC)
	wantBuckets := []time.Time{start, start.Add(time.Minute), start.Add(2 * time.Minute)}
	if got.Window != "3m0s" || got.Step != "1m0s" || !got.Start.Equal(start) || !slices.EqualFunc(got.Buckets, wantBuckets, time.Time.Equal) {
		t.Fatalf("window %s step %s start %v buckets %v; want 3m0s 1m0s %v %v", got.Window, got.Step, got.Start, got.Buckets, start, wantBuckets)
	}
	// The signups at 11:57:30 are before the first bucket.
	if !slices.Equal(got.Series["failed_login"], []int{2, 0, 1}) || len(got.Series) != 1 {
		t.Fatalf("series %v, want failed_login [2 0 1] only", got.Series)
	}
	if len(got.TopFailedLoginIPs) != 2 || got.TopFailedLoginIPs[0].IP != "198.51.100.7" || got.TopFailedLoginIPs[0].Count != 2 {
		t.Fatalf("top IPs %+v", got.TopFailedLoginIPs)
	}
	if len(got.TopTargetedUsers) != 1 || got.TopTargetedUsers[0].UserID != victim.User.ID ||
		got.TopTargetedUsers[0].Email != "series-victim@example.com" || got.TopTargetedUsers[0].Count != 3 {
		t.Fatalf("top users %+v", got.TopTargetedUsers)
	}
	if got.ActiveSessions != 2 {
		t.Fatalf("active sessions %d, want 2", got.ActiveSessions)
	}

	res = e.do(t, "GET", "/api/admin/security/timeseries", nil, bearer(boss.AccessToken)...)
	res.json(t, &got)
	if got.Window != "1h0m0s" || got.Step != "1m0s" || len(got.Buckets) != 60 {
		t.Fatalf("defaults: window %s step %s, %d buckets; want 1h, 1m, 60", got.Window, got.Step, len(got.Buckets))
	}
	for _, q := range []string{"window=25h&step=5m", "window=0s", "window=soon", "step=9s", "step=10500ms", "window=10m&step=11m", "window=24h&step=10s", "window=1h&step=9s"} {
		res := e.do(t, "GET", "/api/admin/security/timeseries?"+q, nil, bearer(boss.AccessToken)...)
		if res.Status != 422 || res.errorCode(t) != "validation_failed" {
			t.Errorf("%s: %d %s, want 422", q, res.Status, res.Body)
		}
	}
	for _, q := range []string{"window=24h&step=4m", "window=1h&step=10s", "window=1m&step=1m"} {
		if res := e.do(t, "GET", "/api/admin/security/timeseries?"+q, nil, bearer(boss.AccessToken)...); res.Status != 200 {
			t.Errorf("%s: %d %s, want 200", q, res.Status, res.Body)
		}
	}
}

type adminUserBody struct {
	User struct {
		ID            string    `json:"id"`
		Email         string    `json:"email"`
		Name          string    `json:"name"`
		UserType      string    `json:"userType"`
		EmailVerified *bool     `json:"emailVerified"`
		CreatedAt     time.Time `json:"createdAt"`
	} `json:"user"`
	Sessions   []sessionJSON `json:"sessions"`
	Identities []struct {
		Provider      string    `json:"provider"`
		Email         string    `json:"email"`
		EmailVerified bool      `json:"emailVerified"`
		CreatedAt     time.Time `json:"createdAt"`
	} `json:"identities"`
	Events  []eventBody `json:"events"`
	Lockout struct {
		Locked            *bool `json:"locked"`
		RetryAfterSeconds *int  `json:"retryAfterSeconds"`
	} `json:"lockout"`
}

func (e *env) adminUser(tb testing.TB, access, id string) *adminUserBody {
	tb.Helper()
	e.Recorder.Flush(context.Background())
	res := e.do(tb, "GET", "/api/admin/users/"+id, nil, bearer(access)...)
	if res.Status != 200 {
		tb.Fatalf("admin user: %d %s", res.Status, res.Body)
	}
	var body adminUserBody
	res.json(tb, &body)
	return &body
}

func TestAdminSearchesUsersAndSeesOnesSessionsIdentitiesEventsAndLockout(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) { c.Rules.Lockout = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 3} }))
	boss := e.admin(t, "look-boss@example.com")
	kate := e.signup(t, "Kate.Smith@example.com", "deviceName", "Kate's laptop")
	e.signup(t, "kate_jones@example.org")
	e.signup(t, "katexjones@example.org")
	if err := e.Store.CreateIdentity(context.Background(), &fluxauth.Identity{Provider: "google", Subject: "g-kate", UserID: kate.User.ID,
		Email: "kate@gmail.example", EmailVerified: true, CreatedAt: e.Clock.Now()}); err != nil {
		t.Fatal(err)
	}

	search := func(q string) []string {
		t.Helper()
		res := e.do(t, "GET", "/api/admin/users?"+url.Values{"query": {q}}.Encode(), nil, bearer(boss.AccessToken)...)
		if res.Status != 200 {
			t.Fatalf("search %q: %d %s", q, res.Status, res.Body)
		}
		var body struct {
			Users []struct {
				ID        string    `json:"id"`
				Email     string    `json:"email"`
				Name      string    `json:"name"`
				UserType  string    `json:"userType"`
				Verified  *bool     `json:"emailVerified"`
				CreatedAt time.Time `json:"createdAt"`
			} `json:"users"`
		}
		res.json(t, &body)
		var out []string
		for _, u := range body.Users {
			if u.ID == "" || u.Name == "" || u.UserType == "" || u.Verified == nil || u.CreatedAt.IsZero() {
				t.Fatalf("search %q: incomplete user %+v", q, u)
			}
			out = append(out, u.Email)
		}
		return out
	}
	if got := search("KATE"); !slices.Equal(got, []string{"Kate.Smith@example.com", "kate_jones@example.org", "katexjones@example.org"}) {
		t.Fatalf("search KATE: %v", got)
	}
	if got := search("kate_"); !slices.Equal(got, []string{"kate_jones@example.org"}) {
		t.Fatalf("search kate_ (no wildcard): %v", got)
	}
	if res := e.do(t, "GET", "/api/admin/users?query=a%00b", nil, bearer(boss.AccessToken)...); res.Status != 422 {
		t.Fatalf("search with a control character: %d", res.Status)
	}

	// Three wrong passwords lock Kate out (burst 3).
	for range 4 {
		e.do(t, "POST", "/api/auth/login", map[string]string{"email": "kate.smith@example.com", "password": "wrong password!"})
	}
	got := e.adminUser(t, boss.AccessToken, kate.User.ID)
	if got.User.ID != kate.User.ID || got.User.Email != "Kate.Smith@example.com" || got.User.UserType != "client" || got.User.CreatedAt.IsZero() {
		t.Fatalf("user %+v", got.User)
	}
	if len(got.Sessions) != 1 || got.Sessions[0].ID != sidOf(t, kate.AccessToken) || got.Sessions[0].DeviceName != "Kate's laptop" || got.Sessions[0].Current {
		t.Fatalf("sessions %+v", got.Sessions)
	}
	if len(got.Identities) != 1 || got.Identities[0].Provider != "google" || got.Identities[0].Email != "kate@gmail.example" || !got.Identities[0].EmailVerified {
		t.Fatalf("identities %+v", got.Identities)
	}
	if len(got.Events) != 6 || got.Events[0].EventType != "failed_login" || got.Events[5].EventType != "signup" {
		t.Fatalf("events: %d, want the signup and 4 failed logins and the rate_limit_exceeded, newest first", len(got.Events))
	}
	if got.Lockout.Locked == nil || !*got.Lockout.Locked || *got.Lockout.RetryAfterSeconds < 3000 {
		t.Fatalf("lockout %+v, want locked for about an hour", got.Lockout)
	}
	// Looking did not take an attempt: the lockout reads the same twice.
	if again := e.adminUser(t, boss.AccessToken, kate.User.ID); *again.Lockout.RetryAfterSeconds != *got.Lockout.RetryAfterSeconds {
		t.Fatalf("the lockout moved from %d to %d s by being looked at", *got.Lockout.RetryAfterSeconds, *again.Lockout.RetryAfterSeconds)
	}
	// Nor on an account with budget left: one failure and three looks leave two attempts of three.
	peeked := e.signup(t, "peeked@example.com")
	e.failLogin(t, "peeked@example.com", "198.51.100.21")
	for range 3 {
		if e.adminUser(t, boss.AccessToken, peeked.User.ID).Lockout.Locked == nil {
			t.Fatal("no lockout state")
		}
	}
	if res := e.login(t, "peeked@example.com"); res.Status != 200 {
		t.Fatalf("login after an admin looked at the account: %d %s", res.Status, res.Body)
	}
	other := e.adminUser(t, boss.AccessToken, boss.User.ID)
	if *other.Lockout.Locked || *other.Lockout.RetryAfterSeconds != 0 || len(other.Identities) != 0 {
		t.Fatalf("the admin's own page: %+v", other)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		if res := e.do(t, "GET", "/api/admin/users/"+id, nil, bearer(boss.AccessToken)...); res.Status != 404 || res.errorCode(t) != "not_found" {
			t.Fatalf("unknown user %s: %d %s", id, res.Status, res.Body)
		}
	}
}

func TestAdminRevokesOneSessionOfAnyUser(t *testing.T) {
	e := newEnv(t)
	boss := e.admin(t, "revoke-one-boss@example.com")
	user := e.signup(t, "two-devices@example.com")
	other := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "two-devices@example.com", "password": "correct horse battery"})
	var second authResponse
	other.json(t, &second)
	sid := sidOf(t, user.AccessToken)

	if res := e.do(t, "DELETE", "/api/admin/sessions/"+sid, nil, bearer(boss.AccessToken)...); res.Status != 204 {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	if res := e.do(t, "GET", "/api/auth/me", nil, bearer(user.AccessToken)...); res.Status != 401 || res.errorCode(t) != "session_revoked" {
		t.Fatalf("the revoked session's access token: %d %s", res.Status, res.Body)
	}
	if res := e.do(t, "GET", "/api/auth/me", nil, bearer(second.AccessToken)...); res.Status != 200 {
		t.Fatalf("the user's other session: %d %s", res.Status, res.Body)
	}
	ev := e.only(t, fluxauth.EventTokenRevoked)
	if ev.UserID != user.User.ID || ev.Metadata["by"] != "admin:"+boss.User.ID || ev.Metadata["reason"] != "admin_revoked" || ev.Metadata["sessionId"] != sid {
		t.Fatalf("token_revoked %+v, naming the admin", ev)
	}
	for _, id := range []string{sid, uuid.NewString(), "not-a-uuid"} {
		if res := e.do(t, "DELETE", "/api/admin/sessions/"+id, nil, bearer(boss.AccessToken)...); res.Status != 404 || res.errorCode(t) != "not_found" {
			t.Fatalf("revoke %s: %d %s, want 404", id, res.Status, res.Body)
		}
	}
	if n := len(e.events(t, fluxauth.EventTokenRevoked)); n != 1 {
		t.Fatalf("%d token_revoked events, want 1: the 404s change nothing", n)
	}
}

// lockOut makes logins of email fail until the lockout (burst 3) refuses them.
func (e *env) lockOut(tb testing.TB, email string) {
	tb.Helper()
	for range 3 {
		e.failLogin(tb, email, "198.51.100.20")
	}
	if res := e.login(tb, email); res.Status != 429 {
		tb.Fatalf("login with the right password after the lockout: %d %s", res.Status, res.Body)
	}
}

func (e *env) login(tb testing.TB, email string) *response {
	tb.Helper()
	return e.do(tb, "POST", "/api/auth/login", map[string]string{"email": email, "password": "correct horse battery"})
}

var threeStrikes = withConfig(func(c *config.Config) {
	c.Rules.Lockout = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 3}
})

func TestAdminUnlockClearsTheLockoutAndIsRecorded(t *testing.T) {
	e := newEnv(t, threeStrikes)
	boss := e.admin(t, "unlock-boss@example.com")
	user := e.signup(t, "locked@example.com")
	e.lockOut(t, "locked@example.com")
	if res := e.do(t, "POST", "/api/admin/users/"+user.User.ID+"/unlock", nil, bearer(boss.AccessToken)...); res.Status != 204 {
		t.Fatalf("unlock: %d %s", res.Status, res.Body)
	}
	if res := e.login(t, "locked@example.com"); res.Status != 200 {
		t.Fatalf("login after the unlock: %d %s", res.Status, res.Body)
	}
	ev := e.only(t, fluxauth.EventAccountUnlocked)
	if ev.UserID != user.User.ID || ev.Metadata["by"] != "admin:"+boss.User.ID || ev.Severity != "info" {
		t.Fatalf("account_unlocked %+v, naming the admin", ev)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		if res := e.do(t, "POST", "/api/admin/users/"+id+"/unlock", nil, bearer(boss.AccessToken)...); res.Status != 404 {
			t.Fatalf("unlock %s: %d, want 404", id, res.Status)
		}
	}
	if n := len(e.events(t, fluxauth.EventAccountUnlocked)); n != 1 {
		t.Fatalf("%d account_unlocked events, want 1", n)
	}
}

func TestUnlockClearsTheLockoutInRedisForEveryInstance(t *testing.T) {
	e := newEnv(t, threeStrikes, withRedis(testenv.RedisURL(t), "fluxauth-test:"+uuid.NewString()+":"))
	boss := e.admin(t, "redis-unlock-boss@example.com")
	user := e.signup(t, "redis-locked@example.com")
	e.lockOut(t, "redis-locked@example.com") // counted in Redis, as every instance sees it
	if res := e.do(t, "POST", "/api/admin/users/"+user.User.ID+"/unlock", nil, bearer(boss.AccessToken)...); res.Status != 204 {
		t.Fatalf("unlock: %d %s", res.Status, res.Body)
	}
	if res := e.login(t, "redis-locked@example.com"); res.Status != 200 {
		t.Fatalf("login after the unlock: %d %s", res.Status, res.Body)
	}
}
