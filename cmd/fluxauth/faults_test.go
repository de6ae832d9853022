package main

// The fault tests: the real binary under a bounded load (a few hundred requests a second on
// loopback, of the loadtest "faults" mix: /me, refreshes, logins, and logins that fail on purpose)
// while a dependency fails the way operators meet it. Each starts its own PostgreSQL cluster and
// redis-server (internal/testenv), never touching the machine's shared ones, so that it can
// restart, kill or freeze them. The binary is built without the race detector, so the latencies
// measured are the service's. Each test logs its figures (docs/RELIABILITY.md), in one line starting
// "figures |".

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	_ "modernc.org/sqlite"

	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/internal/loadtest"
	"github.com/fluxstudio/fluxauth/internal/testenv"
)

const (
	// faultRate is the load's rate, requests per second.
	faultRate = 200
	// faultUsers are the simulated users: their refresh chains, /me and logins.
	faultUsers = 40
	// requestTimeout is how long the load waits for an answer: one not in by then is a hang.
	requestTimeout = 5 * time.Second
	// recoveryBound is how soon after a dependency is back every request must succeed again.
	recoveryBound = 5 * time.Second
)

// faultEnv is what every fault server runs with: cheap password hashing (the load is about the
// dependencies, not argon2), the per-IP and per-session limits off (every request comes from
// 127.0.0.1), the lockout on (its counts live in Redis), no suspicious-refresh events (so the only
// events are the ones counted), and no daily cleanup.
func faultEnv(dir string, extra ...string) []string {
	return append([]string{
		"FLUXAUTH_SIGNING_KEYS=" + filepath.Join(dir, "keys.json"),
		"FLUXAUTH_ARGON2_MEMORY=8192", "FLUXAUTH_ARGON2_TIME=1",
		"FLUXAUTH_RATE_SIGNUP_IP=off", "FLUXAUTH_RATE_LOGIN_IP=off", "FLUXAUTH_RATE_LOGIN_IP_EMAIL=off",
		"FLUXAUTH_RATE_REFRESH_SESSION=off", "FLUXAUTH_RATE_REFRESH_IP=off", "FLUXAUTH_SUSPICIOUS_REFRESH_RATE=off",
		"FLUXAUTH_CLEANUP_AT=off", "FLUXAUTH_LOG_LEVEL=warn",
	}, extra...)
}

// instance is one running fluxauth.
type instance struct {
	cmd  *exec.Cmd
	url  string
	logs *testenv.Buffer
}

func startInstance(tb testing.TB, env ...string) *instance {
	tb.Helper()
	dir := tb.TempDir()
	cmd, url, logs := startServe(tb, dir, env...)
	return &instance{cmd: cmd, url: url, logs: logs}
}

// terminate sends SIGTERM and waits for the process to exit: its exit error and how long it took.
func (in *instance) terminate(tb testing.TB) (error, time.Duration) {
	tb.Helper()
	start := time.Now()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	err := in.cmd.Wait()
	return err, time.Since(start)
}

// stop is terminate for the end of a test: the exit must be clean.
func (in *instance) stop(tb testing.TB) {
	tb.Helper()
	if err, _ := in.terminate(tb); err != nil {
		tb.Fatalf("serve exited with %v:\n%s", err, in.logs)
	}
}

// answer is one request of the load, as the client saw it.
type answer struct {
	start   time.Time
	latency time.Duration
	code    int    // 0: no HTTP answer
	errCode string // fluxauth's error code, for failures
	failing bool   // a login made to fail on purpose
	err     string // the transport error, when there was no answer
	id      string // the X-Request-ID it was sent with
}

func (a answer) end() time.Time { return a.start.Add(a.latency) }

// good is a success, or the 401 invalid_credentials a failing login asks for.
func (a answer) good() bool {
	return a.code >= 200 && a.code < 300 || a.expected401()
}

func (a answer) expected401() bool {
	return a.failing && a.code == http.StatusUnauthorized && a.errCode == "invalid_credentials"
}

func (a answer) String() string {
	if a.code == 0 {
		return fmt.Sprintf("no answer after %v: %s", a.latency.Round(time.Millisecond), a.err)
	}
	return fmt.Sprintf("%d %s after %v (failing login: %v)", a.code, a.errCode, a.latency.Round(time.Millisecond), a.failing)
}

// load is the faults mix running against one instance until stopped.
type load struct {
	w       *loadtest.Workload
	cancel  context.CancelFunc
	done    chan struct{}
	answers []answer // written by the load's one result goroutine until done is closed
	unsent  *idTransport
}

// idTransport sends every request with its own X-Request-ID, so that an answer, or the lack of one,
// can be matched with the server's access log, and keeps the IDs of the requests that got no answer.
type idTransport struct {
	next http.RoundTripper
	n    atomic.Uint64
	mu   sync.Mutex
	lost map[string]string // request ID → transport error
}

func (t *idTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	id := fmt.Sprintf("load-%d", t.n.Add(1))
	r = r.Clone(r.Context())
	r.Header.Set("X-Request-ID", id)
	res, err := t.next.RoundTrip(r)
	if err != nil {
		t.mu.Lock()
		t.lost[id] = err.Error()
		t.mu.Unlock()
	}
	return res, err
}

// noAnswers returns the request IDs that got no answer, with their errors.
func (t *idTransport) noAnswers() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.lost)
}

// setupUsers signs the load's users up through the API.
func setupUsers(tb testing.TB, base string) []*loadtest.User {
	tb.Helper()
	users, err := loadtest.Setup(context.Background(), loadtest.SetupConfig{
		Target: base, Users: faultUsers, Concurrency: 4, Timeout: time.Minute, Client: loadtest.NewClient(4, requestTimeout),
	}, loadtest.RunID())
	if err != nil {
		tb.Fatal(err)
	}
	return users
}

// startLoad runs the faults mix at faultRate against base until stop.
func startLoad(tb testing.TB, base string, users []*loadtest.User) *load {
	tb.Helper()
	w, err := loadtest.NewWorkload("faults", loadtest.WorkloadConfig{Base: base, Users: users, RunID: loadtest.RunID()})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{w: w, cancel: cancel, done: make(chan struct{})}
	observe := w.Observe
	w.Observe = func(r *vegeta.Result) {
		a := answer{start: r.Timestamp, latency: r.Latency, code: int(r.Code), failing: loadtest.IsFailingLogin(r), err: r.Error,
			id: r.Headers.Get("X-Request-ID")}
		if a.code >= 300 {
			a.errCode = loadtest.ErrorCode(r)
		}
		l.answers = append(l.answers, a)
		observe(r)
	}
	client := loadtest.NewClient(64, requestTimeout)
	l.unsent = &idTransport{next: client.Transport, lost: map[string]string{}}
	client.Transport = l.unsent
	go func() {
		defer close(l.done)
		// Long enough for any test; stop ends it.
		loadtest.Run(ctx, w, loadtest.RunConfig{Rate: faultRate, Duration: 5 * time.Minute, Connections: 64, Client: client})
	}()
	tb.Cleanup(l.stop)
	return l
}

// stop ends the load and waits for its last answers.
func (l *load) stop() {
	l.cancel()
	<-l.done
}

// figures are what docs/RELIABILITY.md reports for one fault.
type figures struct {
	name           string
	answers        []answer
	recovery       time.Duration // -1: not applicable
	eventsExpected int
	eventsWritten  int
}

func (f figures) log(tb testing.TB) {
	tb.Helper()
	// By status, and by error code for the failures: "200: 1538", "503 database_unavailable: 20".
	kinds := map[string]int{}
	var longest time.Duration
	for _, a := range f.answers {
		kind := strconv.Itoa(a.code)
		switch {
		case a.code == 0:
			kind = "no answer"
		case a.code >= 300:
			kind += " " + a.errCode
		}
		kinds[kind]++
		longest = max(longest, a.latency)
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s: %d", k, kinds[k]))
	}
	rec := "–"
	if f.recovery >= 0 {
		rec = fmt.Sprintf("%.2f", f.recovery.Seconds())
	}
	tb.Logf("figures | %s | %d | %s | %d ms | %s | %d / %d |", f.name, len(f.answers), strings.Join(parts, ", "),
		longest.Milliseconds(), rec, f.eventsExpected, f.eventsWritten)
}

// checkAnswers fails tb for every answer that is neither good nor a 503 with one of the codes
// allowed, reporting the first few.
func checkAnswers(tb testing.TB, answers []answer, allowed503 ...string) {
	tb.Helper()
	var bad []answer
	for _, a := range answers {
		if !a.good() && !(a.code == http.StatusServiceUnavailable && slices.Contains(allowed503, a.errCode)) {
			bad = append(bad, a)
		}
	}
	if len(bad) > 0 {
		tb.Errorf("%d of %d answers are neither a success, an expected 401 nor a 503 %v; the first: %v",
			len(bad), len(answers), allowed503, bad[:min(len(bad), 5)])
	}
}

// recovered returns how long after back the last request that was not good was sent (0 when none
// was), failing tb when that is past recoveryBound or when the load did not go on long enough past
// it to tell. A request is judged by when it was sent, the state of the service it met: how long a
// loaded machine took to answer it is not the dependency's doing (requestTimeout catches a hang).
func recovered(tb testing.TB, answers []answer, back time.Time) time.Duration {
	tb.Helper()
	var last time.Duration
	var lastEnd time.Time
	for _, a := range answers {
		lastEnd = maxTime(lastEnd, a.end())
		if !a.good() {
			last = max(last, a.start.Sub(back))
		}
	}
	if last > recoveryBound {
		tb.Errorf("a request sent %v after the dependency was back failed, past the %v allowed", last.Round(time.Millisecond), recoveryBound)
	}
	if lastEnd.Sub(back) < recoveryBound {
		tb.Fatalf("the load ended %v after the dependency was back: too soon to tell recovery", lastEnd.Sub(back))
	}
	return last
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// expected401s counts the failing logins answered 401 invalid_credentials: each must have its
// failed_login event.
func expected401s(answers []answer) int {
	n := 0
	for _, a := range answers {
		if a.expected401() {
			n++
		}
	}
	return n
}

// pgCount returns the one integer query yields on the database at url.
func pgCount(tb testing.TB, url, query string) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

const countFailedLogins = `SELECT count(*) FROM security_events WHERE event_type = 'failed_login'`

// checkChains fails tb when a refresh chain forked (two live tokens in one session, or two tokens
// rotated from one parent) or a session was ended (reuse detection, a lost chain).
func checkChains(tb testing.TB, count func(query string) int) {
	tb.Helper()
	if n := count(`SELECT count(*) FROM (SELECT session_id FROM refresh_tokens WHERE spent_at IS NULL AND revoked_at IS NULL GROUP BY session_id HAVING count(*) > 1) AS forked`); n != 0 {
		tb.Errorf("%d sessions have more than one live refresh token", n)
	}
	if n := count(`SELECT count(*) FROM (SELECT parent_id FROM refresh_tokens WHERE parent_id IS NOT NULL GROUP BY parent_id HAVING count(*) > 1) AS forked`); n != 0 {
		tb.Errorf("%d refresh tokens were rotated into more than one successor", n)
	}
	if n := count(`SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL`); n != 0 {
		tb.Errorf("%d refresh tokens were revoked: a session ended during the fault", n)
	}
}

// checkEveryChainRefreshes refreshes every user's chain once more with the token it holds: none
// may have lost its live token.
func checkEveryChainRefreshes(tb testing.TB, base string, l *load, users []*loadtest.User) {
	tb.Helper()
	if n := l.w.Pool.Retired(); n != 0 {
		tb.Fatalf("%d users' sessions ended during the fault", n)
	}
	w, err := loadtest.NewWorkload("refresh", loadtest.WorkloadConfig{Base: base, Users: users, RunID: loadtest.RunID()})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := loadtest.Run(context.Background(), w, loadtest.RunConfig{Rate: len(users), Duration: time.Second,
		Connections: len(users), Client: loadtest.NewClient(len(users), requestTimeout)})
	if err != nil {
		tb.Fatal(err)
	}
	if s.Requests == 0 || s.Successes != s.Requests || w.Pool.Retired() != 0 {
		tb.Fatalf("after the fault, %d of %d refreshes succeeded, %d chains lost: %+v", s.Successes, s.Requests, w.Pool.Retired(), s.Errors)
	}
}

// presetRedisTrust marks a fresh Redis as believed for revocations, as one that has been serving
// for longer than an access token lives: the revocation checks then use it, not the database.
func presetRedisTrust(tb testing.TB, url string) {
	tb.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Set(context.Background(), "fluxauth:revocation:trusted-from", strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10), 0).Err(); err != nil {
		tb.Fatal(err)
	}
}

// call makes one request with a bearer token and returns its status and error code.
func call(tb testing.TB, method, url, bearer, body string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	c := &http.Client{Timeout: requestTimeout}
	res, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	var eb struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(data, &eb)
	return res.StatusCode, eb.Error.Code
}

// at sleeps until t: the fault tests inject each fault at a set point of the load's timeline.
func at(t time.Time) { time.Sleep(time.Until(t)) }

// 1. PostgreSQL restarts under load: answers are successes, expected 401s or 503s naming the
// database or the event log; every request succeeds again within 5 s of it being back, without
// restarting fluxauth; every failed_login answered 401 has its row; no refresh chain forks or loses
// its live token.
func TestFaultPostgresRestartUnderLoad(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rs := testenv.StartRedis(t)
	presetRedisTrust(t, rs.URL())
	in := startInstance(t, faultEnv(t.TempDir(), "FLUXAUTH_DATABASE_URL="+pg.URL(), "FLUXAUTH_REDIS_URL="+rs.URL())...)
	users := setupUsers(t, in.url)

	l := startLoad(t, in.url, users)
	at(time.Now().Add(2 * time.Second))
	restart := time.Now()
	pg.Restart() // pg_ctl restart -m fast: returns once it accepts connections again
	back := time.Now()
	t.Logf("pg_ctl restart -m fast took %v", back.Sub(restart).Round(time.Millisecond))
	at(back.Add(recoveryBound + time.Second))
	l.stop()

	checkAnswers(t, l.answers, "database_unavailable", "audit_unavailable")
	recovery := recovered(t, l.answers, back)
	checkEveryChainRefreshes(t, in.url, l, users)
	in.stop(t) // drains the audit queue
	count := func(q string) int { return pgCount(t, pg.URL(), q) }
	checkChains(t, count)
	want, got := expected401s(l.answers), count(countFailedLogins)
	if got != want {
		t.Errorf("%d failing logins answered 401, %d failed_login events written", want, got)
	}
	figures{name: "PostgreSQL restart (pg_ctl restart -m fast)", answers: l.answers, recovery: recovery, eventsExpected: want, eventsWritten: got}.log(t)
}

// 2. Redis is killed under load, and started again empty: requests keep succeeding on the
// in-process fallback; a session revoked meanwhile is refused by a second instance within 1 s;
// once Redis is back, limits are shared again within seconds and the revocation still holds.
func TestFaultRedisKilledUnderLoad(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rs := testenv.StartRedis(t)
	presetRedisTrust(t, rs.URL())
	keys := t.TempDir() // both instances sign with one key file, as in production
	// The rule is about an outage and its end, not the call timeout (the partition test's): calls
	// get 1 s, so one a loaded machine makes slow does not open the breaker again after the restart.
	env := faultEnv(keys, "FLUXAUTH_DATABASE_URL="+pg.URL(), "FLUXAUTH_REDIS_URL="+rs.URL(), "FLUXAUTH_REDIS_TIMEOUT=1s")
	a := startInstance(t, env...)
	b := startInstance(t, env...)
	users := setupUsers(t, a.url)
	victim := signupOver(t, a.url, "victim@example.com")
	if code, _ := call(t, "GET", b.url+"/api/auth/me", victim, ""); code != 200 {
		t.Fatalf("victim's /me on b before the fault: %d", code)
	}
	probe401s := 0 // failed logins made by this test outside the load, each with its event

	l := startLoad(t, a.url, users)
	at(time.Now().Add(2 * time.Second))
	rs.Stop() // killed: its data is gone
	killed := time.Now()
	// b sees the session live, from the database now, and caches that answer.
	if code, _ := call(t, "GET", b.url+"/api/auth/me", victim, ""); code != 200 {
		t.Fatalf("victim's /me on b with Redis down, before the revocation: %d", code)
	}
	if code, _ := call(t, "POST", a.url+"/api/auth/logout", victim, ""); code != 204 {
		t.Fatalf("logout on a with Redis down: %d", code)
	}
	revoked := time.Now()
	// Every check b starts a second after the revocation must refuse the session; how long a check
	// takes to be answered on a loaded machine is not the rule's.
	var seen time.Duration
	for {
		start := time.Now()
		code, errCode := call(t, "GET", b.url+"/api/auth/me", victim, "")
		if code == 401 && errCode == "session_revoked" {
			seen = start.Sub(revoked)
			break
		}
		if start.Sub(revoked) >= time.Second {
			t.Fatalf("b answered %d %s to a check started %v after the session was revoked on a, Redis down; want refused within 1s",
				code, errCode, start.Sub(revoked).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}

	at(killed.Add(3 * time.Second))
	rs.Start() // empty
	back := time.Now()
	// Shared again: the lockout (10 quick failures) counts attempts made on both instances as one.
	// Every round started recoveryBound after Redis is back must find it shared.
	var shared time.Duration
	for i := 0; ; i++ {
		start := time.Now()
		email := fmt.Sprintf(`{"email":"shared-%d@example.com","password":"not-the-password"}`, i)
		for j := range 10 {
			in := a
			if j%2 == 1 {
				in = b
			}
			if code, errCode := call(t, "POST", in.url+"/api/auth/login", "", email); code == 401 && errCode == "invalid_credentials" {
				probe401s++
			}
		}
		if code, _ := call(t, "POST", a.url+"/api/auth/login", "", email); code == http.StatusTooManyRequests {
			shared = start.Sub(back)
			probe401s++ // a login the lockout refuses is a failed_login too (reason locked_out)
			break
		} else if code == 401 {
			probe401s++
		}
		if start.Sub(back) >= recoveryBound {
			t.Fatalf("the lockout was still counted per instance in a round started %v after Redis came back; want shared within %v",
				start.Sub(back).Round(time.Millisecond), recoveryBound)
		}
	}
	for _, in := range []*instance{a, b} {
		if code, errCode := call(t, "GET", in.url+"/api/auth/me", victim, ""); code != 401 || errCode != "session_revoked" {
			t.Errorf("the session revoked during the outage answers %d %s on %s once Redis is back empty", code, errCode, in.url)
		}
	}
	at(back.Add(2 * time.Second))
	l.stop()

	checkAnswers(t, l.answers) // no 503 at all: Redis is never needed
	checkEveryChainRefreshes(t, a.url, l, users)
	a.stop(t)
	b.stop(t)
	count := func(q string) int { return pgCount(t, pg.URL(), q) }
	checkChains(t, func(q string) int {
		// The victim's session was ended on purpose.
		return count(strings.Replace(q, "WHERE revoked_at IS NOT NULL", "WHERE revoked_at IS NOT NULL AND revoked_reason <> 'logout'", 1))
	})
	want, got := expected401s(l.answers)+probe401s, count(countFailedLogins)
	if got != want {
		t.Errorf("%d failing logins answered 401, %d failed_login events written", want, got)
	}
	t.Logf("revocation seen on the second instance %v after it was made with Redis down; limits shared %v after Redis came back",
		seen.Round(time.Millisecond), shared.Round(time.Millisecond))
	figures{name: "Redis killed, restarted empty 3 s later", answers: l.answers, recovery: shared, eventsExpected: want, eventsWritten: got}.log(t)
}

// 3. Redis stops answering (SIGSTOP: the connections stay open, nothing comes back), as across a
// network partition: no request waits more than 250 ms on it in all with the default
// FLUXAUTH_REDIS_TIMEOUT (25 ms a call), for rate limits and revocation checks alike, and all
// succeed. (Without the policy, the revocation check waited until the thaw: 3 s.) The wait is what
// each request's breaker calls measured, read from /metrics: a request's total latency would
// measure how fast a loaded machine answers, not whether it waited on Redis.
func TestFaultRedisPartitionUnderLoad(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rs := testenv.StartRedis(t)
	presetRedisTrust(t, rs.URL())
	internal := testenv.FreeAddr(t)
	in := startInstance(t, faultEnv(t.TempDir(), "FLUXAUTH_DATABASE_URL="+pg.URL(), "FLUXAUTH_REDIS_URL="+rs.URL(),
		"FLUXAUTH_INTERNAL_ADDR="+internal)...)
	users := setupUsers(t, in.url)

	l := startLoad(t, in.url, users)
	at(time.Now().Add(2 * time.Second))
	before := redisWaits(t, internal)
	rs.Freeze()
	frozen := time.Now()
	at(frozen.Add(3 * time.Second))
	rs.Thaw()
	back := time.Now()
	// Recovered: the load's requests probe Redis, find it answers, and readiness stops saying
	// degraded. A check that started recoveryBound after the thaw must find it so.
	recovery := untilRecovered(t, back, "/readyz not degraded", func() (bool, string) {
		code, body := getBody(t, in.url+"/readyz")
		return code == 200 && !strings.Contains(body, "degraded"), fmt.Sprintf("%d %s", code, body)
	})
	at(back.Add(recoveryBound + time.Second))
	l.stop()

	checkAnswers(t, l.answers)
	const bound = 250 * time.Millisecond
	waits := redisWaits(t, internal).since(before)
	if waits.count == 0 {
		t.Fatal("no request waited on Redis from the freeze on: the wait was not measured")
	}
	if waits.atMost(10*time.Millisecond) == waits.count {
		t.Errorf("every one of %d requests waited at most 10 ms on Redis from the freeze on: the freeze was never felt", waits.count)
	}
	if slow := waits.count - waits.atMost(bound); slow > 0 {
		t.Errorf("%d of %d requests waited more than %v on Redis, frozen or thawed", slow, waits.count, bound)
	}
	t.Logf("from the freeze on: %d requests called Redis, %d waited over 10 ms, %d over %v; longest answer %v",
		waits.count, waits.count-waits.atMost(10*time.Millisecond), waits.count-waits.atMost(bound), bound,
		longest(l.answers, frozen).Round(time.Millisecond))
	in.stop(t)
	want, got := expected401s(l.answers), pgCount(t, pg.URL(), countFailedLogins)
	if got != want {
		t.Errorf("%d failing logins answered 401, %d failed_login events written", want, got)
	}
	figures{name: "Redis frozen (SIGSTOP) for 3 s", answers: l.answers, recovery: recovery, eventsExpected: want, eventsWritten: got}.log(t)
}

// untilRecovered polls check until it holds and returns how long after back that poll started. A
// poll that starts recoveryBound after back and still fails fails tb: how long each poll takes on
// a loaded machine does not count against the bound, only when it was made.
func untilRecovered(tb testing.TB, back time.Time, what string, check func() (bool, string)) time.Duration {
	tb.Helper()
	for {
		start := time.Now()
		ok, got := check()
		if ok {
			return start.Sub(back)
		}
		if start.Sub(back) >= recoveryBound {
			tb.Fatalf("still not %s %v after the dependency was back: %s", what, recoveryBound, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHistogram is fluxauth_http_request_dependency_wait_seconds for Redis: how many requests called
// it, and how many of them waited at most each bucket's bound.
type waitHistogram struct {
	count   int
	buckets map[time.Duration]int
}

var waitBucket = regexp.MustCompile(`^fluxauth_http_request_dependency_wait_seconds_bucket\{dependency="redis",le="([^"]+)"\} (\d+)$`)

// redisWaits reads the Redis wait histogram from the instance's internal listener.
func redisWaits(tb testing.TB, internal string) waitHistogram {
	tb.Helper()
	code, body := getBody(tb, "http://"+internal+"/metrics")
	if code != 200 {
		tb.Fatalf("/metrics: %d", code)
	}
	h := waitHistogram{buckets: map[time.Duration]int{}}
	for _, line := range strings.Split(body, "\n") {
		m := waitBucket.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		if m[1] == "+Inf" {
			h.count = n
			continue
		}
		le, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			tb.Fatalf("bucket %q: %v", line, err)
		}
		h.buckets[time.Duration(le*float64(time.Second))] = n
	}
	return h
}

// since is what was observed after earlier was read.
func (h waitHistogram) since(earlier waitHistogram) waitHistogram {
	d := waitHistogram{count: h.count - earlier.count, buckets: map[time.Duration]int{}}
	for le, n := range h.buckets {
		d.buckets[le] = n - earlier.buckets[le]
	}
	return d
}

// atMost is how many requests waited at most d; d must be a bucket's bound.
func (h waitHistogram) atMost(d time.Duration) int {
	n, ok := h.buckets[d]
	if !ok {
		panic(fmt.Sprintf("no histogram bucket of %v", d))
	}
	return n
}

// longest is the longest answer among those that ended at or after from.
func longest(answers []answer, from time.Time) time.Duration {
	var d time.Duration
	for _, a := range answers {
		if !a.end().Before(from) {
			d = max(d, a.latency)
		}
	}
	return d
}

func getBody(tb testing.TB, url string) (int, string) {
	tb.Helper()
	c := &http.Client{Timeout: requestTimeout}
	res, err := c.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// heldRequest is a request whose handler is running, waiting for its body: Expect: 100-continue
// makes the server say "100 Continue" when the handler starts reading, and the client sends the
// body only when told to. It is in flight for as long as the test wants.
type heldRequest struct {
	conn net.Conn
	r    *bufio.Reader
	body string
}

func holdRequest(tb testing.TB, base, path, body string) *heldRequest {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: fluxauth\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", path, len(body))
	h := &heldRequest{conn: conn, r: bufio.NewReader(conn), body: body}
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	line, err := h.r.ReadString('\n')
	if err != nil || !strings.Contains(line, "100 Continue") {
		tb.Fatalf("held request: %q, %v; want 100 Continue", line, err)
	}
	h.r.ReadString('\n') // the blank line ending the interim response
	return h
}

// finish sends the body and returns the answer's status, or an error.
func (h *heldRequest) finish() (int, error) {
	h.conn.SetDeadline(time.Now().Add(requestTimeout))
	if _, err := io.WriteString(h.conn, h.body); err != nil {
		return 0, err
	}
	res, err := http.ReadResponse(h.r, nil)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// refused reports whether a new connection to base is refused.
func refused(base string) bool {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// 4. SIGTERM under load: in-flight requests complete, new connections are refused, the queued
// security events are all written before exit, and the exit is 0 within FLUXAUTH_SHUTDOWN_TIMEOUT.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	pg := testenv.StartPostgres(t)
	const timeout = 5 * time.Second
	// At info, the access log has every request the server read, by its X-Request-ID.
	in := startInstance(t, faultEnv(t.TempDir(), "FLUXAUTH_DATABASE_URL="+pg.URL(), "FLUXAUTH_SHUTDOWN_TIMEOUT="+timeout.String(),
		"FLUXAUTH_LOG_LEVEL=info")...)
	users := setupUsers(t, in.url)

	l := startLoad(t, in.url, users)
	at(time.Now().Add(2 * time.Second))
	// Failing logins whose handlers are running when SIGTERM comes, and finish after it.
	var held []*heldRequest
	for i := range 5 {
		held = append(held, holdRequest(t, in.url, "/api/auth/login", fmt.Sprintf(`{"email":"held-%d@example.com","password":"not-the-password"}`, i)))
	}
	sent := time.Now()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- in.cmd.Wait() }()
	for !refused(in.url) {
		if time.Since(sent) > time.Second {
			t.Fatal("new connections still accepted 1s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	heldAnswered := 0
	for _, h := range held {
		code, err := h.finish()
		if err != nil || code != http.StatusUnauthorized {
			t.Errorf("a request in flight at SIGTERM: %d, %v; want its 401", code, err)
			continue
		}
		heldAnswered++
	}
	var took time.Duration
	select {
	case err := <-exited:
		took = time.Since(sent)
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v, want 0:\n%s", err, in.logs)
		}
	case <-time.After(timeout + 5*time.Second):
		t.Fatalf("still running %v after SIGTERM", timeout+5*time.Second)
	}
	if took > timeout {
		t.Errorf("exit %v after SIGTERM, want within FLUXAUTH_SHUTDOWN_TIMEOUT (%v)", took.Round(time.Millisecond), timeout)
	}
	l.stop()

	// Every request the server read was in flight or done: each has its answer, a good one. A
	// request it never read met the closed listener, or an idle keep-alive connection closed as the
	// request was on its way (the server had not read it; the client cannot know): that is the
	// refusal asked for. The access log says which the server read: what the client sent and what
	// the server saw, not when a loaded machine got round to either.
	handled := map[string]bool{}
	for _, m := range regexp.MustCompile(`msg=request .*request_id=(load-\d+)`).FindAllStringSubmatch(in.logs.String(), -1) {
		handled[m[1]] = true
	}
	if len(handled) == 0 {
		t.Fatalf("no request of the load in the access log:\n%s", in.logs)
	}
	lost := l.unsent.noAnswers()
	for id, err := range lost {
		if handled[id] {
			t.Errorf("request %s was read by the server and never answered: %s", id, err)
		}
	}
	var answered []answer
	readBefore := 0
	for _, a := range l.answers {
		if a.code != 0 {
			answered = append(answered, a)
			if !handled[a.id] {
				t.Errorf("an answer (%v) to a request the access log does not have (%q)", a, a.id)
			}
			if a.start.Before(sent) {
				readBefore++
			}
		}
	}
	if n := len(l.answers) - len(answered); n != len(lost) {
		t.Errorf("%d results without an answer, %d requests lost in transport", n, len(lost))
	}
	if readBefore < faultRate {
		t.Errorf("only %d requests answered before SIGTERM: the load did not run", readBefore)
	}
	checkAnswers(t, answered)
	want, got := expected401s(l.answers)+heldAnswered, pgCount(t, pg.URL(), countFailedLogins)
	if got != want {
		t.Errorf("%d failing logins answered 401, %d failed_login events written before exit", want, got)
	}
	t.Logf("exit 0 %v after SIGTERM (FLUXAUTH_SHUTDOWN_TIMEOUT=%v)", took.Round(time.Millisecond), timeout)
	figures{name: "SIGTERM under load", answers: l.answers, recovery: -1, eventsExpected: want, eventsWritten: got}.log(t)
}

// 4, past the timeout: when the events cannot all be written by FLUXAUTH_SHUTDOWN_TIMEOUT, they are
// written before exit if the database comes back in time; else how many is logged. And a request
// that outlasts the timeout is cut, its events still written.
func TestFaultSIGTERMPastTheShutdownTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	pg := testenv.StartPostgres(t)

	// queue starts an instance whose database is reached through a proxy, gets n events queued
	// behind a database that stopped answering, and sends SIGTERM: rate_limit_exceeded events need
	// no database read, so their requests are answered while the audit log's write hangs.
	queue := func(t *testing.T, url string, n int) (*instance, *testenv.Proxy, time.Time) {
		proxy := testenv.NewProxy(t, pg.Addr())
		in := startInstance(t, faultEnv(t.TempDir(), "FLUXAUTH_DATABASE_URL="+proxy.URL(url),
			"FLUXAUTH_SHUTDOWN_TIMEOUT="+timeout.String(), "FLUXAUTH_RATE_LOGIN_IP_EMAIL=1/1h:1")...)
		body := func(i int) string {
			return fmt.Sprintf(`{"email":"limited-%d@example.com","password":"not-the-password"}`, i)
		}
		for i := range n { // one attempt each: allowed, 401
			if code, _ := call(t, "POST", in.url+"/api/auth/login", "", body(i)); code != 401 {
				t.Fatalf("first login: %d", code)
			}
		}
		proxy.Pause()
		for i := range n { // the second: refused, one event each, queued
			if code, _ := call(t, "POST", in.url+"/api/auth/login", "", body(i)); code != http.StatusTooManyRequests {
				t.Fatalf("second login: %d", code)
			}
		}
		sent := time.Now()
		if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		return in, proxy, sent
	}
	waitExit := func(t *testing.T, in *instance, sent time.Time) (error, time.Duration) {
		exited := make(chan error, 1)
		go func() { exited <- in.cmd.Wait() }()
		select {
		case err := <-exited:
			return err, time.Since(sent)
		case <-time.After(timeout + 10*time.Second):
			t.Fatalf("still running %v after SIGTERM:\n%s", timeout+10*time.Second, in.logs)
			return nil, 0
		}
	}
	// exitSlack is the process's own exit after its shutdown work, on a machine CI keeps busy.
	const exitSlack = time.Second
	const n = 20
	const countLimited = `SELECT count(*) FROM security_events WHERE event_type = 'rate_limit_exceeded'`

	t.Run("the database comes back before the deadline: every event is written, exit 0", func(t *testing.T) {
		url := createDatabase(t, pg, "back")
		in, proxy, sent := queue(t, url, n)
		time.Sleep(timeout / 4) // the database is away for part of the timeout
		proxy.Resume()
		err, took := waitExit(t, in, sent)
		if err != nil || took > timeout+exitSlack {
			t.Fatalf("exit %v %v after SIGTERM; want 0 within %v:\n%s", err, took.Round(time.Millisecond), timeout, in.logs)
		}
		if got := pgCount(t, url, countLimited); got != n {
			t.Errorf("%d of the %d queued events written", got, n)
		}
		t.Logf("exit 0 %v after SIGTERM; %d events queued behind a database away for %v, %d written", took.Round(time.Millisecond), n, timeout/4, n)
	})
	t.Run("the database is gone: the unwritten events are counted in the log", func(t *testing.T) {
		url := createDatabase(t, pg, "gone")
		in, proxy, sent := queue(t, url, n)
		err, took := waitExit(t, in, sent)
		proxy.Stop() // what it held never reaches the database
		// The exit may take app.CloseBound more: the database's connections are left closing.
		if err == nil || took > timeout+app.CloseBound+exitSlack {
			t.Fatalf("exit %v %v after SIGTERM; want non-zero within %v:\n%s", err, took.Round(time.Millisecond), timeout, in.logs)
		}
		m := regexp.MustCompile(`msg="audit: security events not written before the shutdown deadline" events=(\d+)`).FindStringSubmatch(in.logs.String())
		if m == nil {
			t.Fatalf("the unwritten events were not counted in the log:\n%s", in.logs)
		}
		logged, _ := strconv.Atoi(m[1])
		// Every login was answered with its event: n failed_login, then n rate_limit_exceeded queued
		// behind the database that stopped answering. Each is written or counted in the log; an
		// insert cut off while its answer was on the way may be both (in doubt, it is counted).
		written := pgCount(t, url, `SELECT count(*) FROM security_events`)
		if logged < n || written+logged < 2*n {
			t.Errorf("%d events written and %d counted in the log: of the %d recorded, some are neither", written, logged, 2*n)
		}
		t.Logf("exit %v %v after SIGTERM; %d events recorded, %d written, %d counted in the log", err, took.Round(time.Millisecond), 2*n, written, logged)
	})
	t.Run("a request outlasts the timeout: it is cut, the events are written, exit 1", func(t *testing.T) {
		url := createDatabase(t, pg, "cut")
		in := startInstance(t, faultEnv(t.TempDir(), "FLUXAUTH_DATABASE_URL="+url, "FLUXAUTH_SHUTDOWN_TIMEOUT="+timeout.String())...)
		failing := 0
		for i := range n {
			if code, _ := call(t, "POST", in.url+"/api/auth/login", "", fmt.Sprintf(`{"email":"cut-%d@example.com","password":"not-the-password"}`, i)); code == 401 {
				failing++
			}
		}
		h := holdRequest(t, in.url, "/api/auth/login", `{"email":"never@example.com","password":"not-the-password"}`)
		sent := time.Now()
		if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err, took := waitExit(t, in, sent)
		if err == nil || took > timeout+exitSlack {
			t.Fatalf("exit %v %v after SIGTERM; want non-zero within %v:\n%s", err, took.Round(time.Millisecond), timeout, in.logs)
		}
		if !strings.Contains(in.logs.String(), "in-flight requests outlasted the shutdown timeout") {
			t.Fatalf("the cut request was not logged:\n%s", in.logs)
		}
		if _, err := h.finish(); err == nil {
			t.Error("the request that outlasted the timeout was answered after exit")
		}
		if got := pgCount(t, url, countFailedLogins); got != failing {
			t.Errorf("%d failing logins answered 401, %d failed_login events written", failing, got)
		}
		t.Logf("exit %v %v after SIGTERM, the held request cut; %d events, %d written", err, took.Round(time.Millisecond), failing, failing)
	})
}

// createDatabase creates a database of its own on the private cluster and returns its URL.
func createDatabase(tb testing.TB, pg *testenv.PostgresServer, name string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatal(err)
	}
	return strings.Replace(pg.URL(), "/postgres?", "/"+name+"?", 1)
}

// 5. The disk holding SQLite fills up: requests that must write answer 503, nothing is corrupted
// (PRAGMA integrity_check), and every request succeeds again within 5 s of space returning.
func TestFaultSQLiteDiskFullUnderLoad(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting the small tmpfs that fills up needs root (CI runs as root)")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	db := filepath.Join(mnt, "fluxauth.db")
	in := startInstance(t, faultEnv(t.TempDir(), "FLUXAUTH_DATABASE_URL=sqlite:"+db)...)
	users := setupUsers(t, in.url)

	l := startLoad(t, in.url, users)
	at(time.Now().Add(2 * time.Second))
	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	full := time.Now()
	at(full.Add(3 * time.Second))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	at(back.Add(recoveryBound + time.Second))
	l.stop()

	checkAnswers(t, l.answers, "database_unavailable", "audit_unavailable")
	unavailable := 0
	for _, a := range l.answers {
		if a.code == http.StatusServiceUnavailable && a.start.After(full) && a.start.Before(back) {
			unavailable++
		}
	}
	if unavailable == 0 {
		t.Error("no request was refused while the disk was full: the test did not fill it")
	}
	recovery := recovered(t, l.answers, back)
	checkEveryChainRefreshes(t, in.url, l, users)
	in.stop(t)

	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var integrity string
	if err := conn.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check after the disk filled up: %q, %v", integrity, err)
	}
	count := func(q string) int {
		var n int
		if err := conn.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	checkChains(t, count)
	want, got := expected401s(l.answers), count(countFailedLogins)
	if got != want {
		t.Errorf("%d failing logins answered 401, %d failed_login events written", want, got)
	}
	figures{name: "SQLite disk full for 3 s", answers: l.answers, recovery: recovery, eventsExpected: want, eventsWritten: got}.log(t)
}

// fill writes path until the file system has no space left.
func fill(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				if len(chunk) == 1 {
					return
				}
				chunk = chunk[:len(chunk)/2] // the last few blocks
				continue
			}
			tb.Fatal(err)
		}
	}
}
