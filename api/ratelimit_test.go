package api_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/internal/breaker"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

func TestRateLimitedAnswersCarryHeaders(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) { c.Rules = config.Default().Rules }))
	var last *response
	for i := 0; i < 6; i++ {
		last = e.do(t, "POST", "/api/auth/login", map[string]string{"email": "h@example.com", "password": "wrong password"})
		if i == 0 {
			if last.Header.Get("RateLimit-Limit") == "" || last.Header.Get("RateLimit-Remaining") == "" || last.Header.Get("RateLimit-Reset") == "" {
				t.Fatalf("headers missing on an answered request: %v", last.Header)
			}
		}
	}
	if last.Status != 429 || last.errorCode(t) != "rate_limited" {
		t.Fatalf("6th login: %d %s", last.Status, last.Body)
	}
	if ra, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", last.Header.Get("Retry-After"))
	}
	if last.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("remaining %q", last.Header.Get("RateLimit-Remaining"))
	}
	// Another client is not limited by this one.
	if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "h@example.com", "password": "wrong password"}, "X-Forwarded-For", "198.51.100.77"); res.Status != 401 {
		t.Fatalf("other IP: %d", res.Status)
	}
	e.Clock.Advance(time.Minute)
	if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "h@example.com", "password": "wrong password"}); res.Status != 401 {
		t.Fatalf("after the window: %d", res.Status)
	}
}

func TestSignupIsLimitedPerIP(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) { c.Rules = config.Default().Rules }))
	for i := 0; i < 5; i++ {
		e.signup(t, uuid.NewString()+"@example.com")
	}
	res := e.do(t, "POST", "/api/auth/signup", map[string]string{"email": "sixth@example.com", "password": "correct horse battery", "name": "S"})
	if res.Status != 429 {
		t.Fatalf("sixth signup in an hour: %d %s", res.Status, res.Body)
	}
	if _, err := e.Store.UserByEmail(context.Background(), "sixth@example.com"); err == nil {
		t.Fatal("a limited signup created the account")
	}
}

// Per-IP limits count an IPv6 client by its /64: walking the addresses of one network buys no
// budget, another /64 has its own, and IPv4 stays per address.
func TestPerIPLimitsCountIPv6ByItsSlash64(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) { c.Rules = config.Default().Rules }))
	signupFrom := func(ip string) *response {
		return e.do(t, "POST", "/api/auth/signup", map[string]string{"email": uuid.NewString() + "@example.com", "password": "correct horse battery", "name": "S"},
			"X-Forwarded-For", ip)
	}
	burst := e.Accounts.Rules.Signup.Rate // no Burst: the rate is the budget
	if burst < 2 || e.Accounts.Rules.Signup.Burst != 0 {
		t.Fatalf("signup limit %v: the test needs a rate of at least 2 and no burst", e.Accounts.Rules.Signup)
	}
	for i := range burst {
		wantStatus(t, "a signup within the /64's budget", signupFrom("2001:db8:1:2::"+strconv.FormatInt(int64(i+1), 16)), 201)
	}
	wantCode(t, "one more address of the same /64", signupFrom("2001:db8:1:2:ffff:ffff:ffff:ffff"), 429, "rate_limited")
	wantStatus(t, "the next /64", signupFrom("2001:db8:1:3::1"), 201)
	for range burst {
		wantStatus(t, "an IPv4 address's budget", signupFrom("198.51.100.7"), 201)
	}
	wantCode(t, "that IPv4 address once more", signupFrom("198.51.100.7"), 429, "rate_limited")
	wantStatus(t, "its neighbour", signupFrom("198.51.100.8"), 201)
}

// Fifty wrong passwords at once against one account: the lockout is taken before the password is
// checked, so exactly the lockout's burst of them are verified and the rest are refused.
func TestParallelWrongPasswordsGetNoMoreTriesThanTheLockout(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config.Config) {
		c.Rules = ratelimit.Rules{Lockout: ratelimit.Limit{Rate: 1, Period: 15 * time.Minute, Burst: 10}}
	}))
	e.signup(t, "target3@example.com")
	var wg sync.WaitGroup
	statuses := make(chan int, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := e.send("POST", "/api/auth/login", map[string]string{"email": "target3@example.com", "password": "guess " + strconv.Itoa(i)},
				"X-Forwarded-For", "198.51.100."+strconv.Itoa(i+1))
			if err != nil {
				t.Errorf("login %d: %v", i, err) // not Fatal: this runs off the test goroutine
				return
			}
			statuses <- res.Status
		}(i)
	}
	wg.Wait()
	close(statuses)
	if t.Failed() {
		t.FailNow()
	}
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[401] != 10 || count[429] != 40 {
		t.Fatalf("statuses %v: want 10 checked, 40 locked out", count)
	}
	checked := 0
	for _, ev := range e.events(t, fluxauth.EventFailedLogin) {
		if ev.Metadata["reason"] == "wrong_password" {
			checked++
		}
	}
	if checked != 10 {
		t.Fatalf("%d passwords checked", checked)
	}
	// Even the right password waits out the lockout...
	if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "target3@example.com", "password": "correct horse battery"}); res.Status != 429 {
		t.Fatalf("right password during lockout: %d", res.Status)
	}
	// ...and works after it, clearing the count.
	e.Clock.Advance(15 * time.Minute)
	if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "target3@example.com", "password": "correct horse battery"}); res.Status != 200 {
		t.Fatalf("after the lockout: %d", res.Status)
	}
}

// The lockout's key is the email address, lower-cased, whatever the client IP and whether or not an
// account has it: an unknown address is refused exactly like a known one, and one address's failures
// never lock another.
func TestLockoutCountsPerEmailWhateverTheCaseTheIPOrWhetherTheAccountExists(t *testing.T) {
	lockout := config.Default().Rules.Lockout
	e := newEnv(t, withConfig(func(c *config.Config) { c.Rules = ratelimit.Rules{Lockout: lockout} }))
	e.signup(t, "known@example.com")
	for _, email := range []string{"known@example.com", "nobody@example.com"} {
		variants := []string{email, strings.ToUpper(email), strings.ToUpper(email[:1]) + email[1:]}
		for i := range lockout.Burst {
			res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": variants[i%len(variants)], "password": "wrong password"},
				"X-Forwarded-For", "198.51.100."+strconv.Itoa(i+1))
			if res.Status != 401 {
				t.Fatalf("%s: failure %d answered %d %s, want 401 before the lock", email, i+1, res.Status, res.Body)
			}
		}
		res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": strings.ToUpper(email), "password": "wrong password"},
			"X-Forwarded-For", "203.0.113.9")
		if res.Status != 429 || res.errorCode(t) != "rate_limited" {
			t.Fatalf("%s: attempt after %d failures from other IPs and spellings: %d %s, want 429", email, lockout.Burst, res.Status, res.Body)
		}
	}
	if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "other@example.com", "password": "wrong password"}); res.Status != 401 {
		t.Fatalf("another address was locked too: %d %s", res.Status, res.Body)
	}
}

func TestTwoInstancesSharingRedisEnforceOneLimit(t *testing.T) {
	prefix := "fluxauth-test:" + uuid.NewString() + ":"
	shared := []envOption{withRedis(testenv.RedisURL(t), prefix), withConfig(func(c *config.Config) {
		c.Rules = ratelimit.Rules{LoginIPEmail: ratelimit.Limit{Rate: 5, Period: time.Minute}}
	})}
	a := newEnv(t, shared...)
	b := newEnv(t, shared...)
	limited := 0
	for i := 0; i < 10; i++ {
		e := a
		if i%2 == 1 {
			e = b
		}
		if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "global@example.com", "password": "wrong password"}); res.Status == 429 {
			limited++
		}
	}
	if limited != 5 {
		t.Fatalf("%d of 10 attempts limited across two instances, want 5 (one global limit of 5)", limited)
	}
}

// Readiness with a real rate-limit fallback in front of the real Redis, reached through a proxy the
// test stops: while Redis is down requests are still answered (limited from memory), and /readyz
// says so and stays 200; once Redis is back and probed, it is plain "ready" again.
func TestReadyzReportsRedisDegradedButStaysReady(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	target, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, target.Addr)
	clock := testenv.NewClock(time.Now())
	e := newEnv(t, withClock(clock), withRedis(proxy.URL(redisURL), "fluxauth-test:"+uuid.NewString()+":"))

	login := func(when string) {
		t.Helper()
		res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "nobody@example.com", "password": "wrong password"})
		if res.Status != 401 {
			t.Fatalf("login %s: %d %s, want 401 (answered, limits or not)", when, res.Status, res.Body)
		}
	}
	readyz := func(when, want string) {
		t.Helper()
		res := e.do(t, "GET", "/readyz", nil)
		if res.Status != 200 || string(res.Body) != want {
			t.Fatalf("/readyz %s: %d %s, want 200 %s", when, res.Status, res.Body, want)
		}
	}
	const ready = "{\"database\":\"ok\",\"status\":\"ready\"}\n"

	login("with Redis up")
	readyz("with Redis up", ready)

	proxy.Stop()
	login("with Redis down")
	readyz("with Redis down", "{\"database\":\"ok\",\"degraded\":[\"redis\"],\"status\":\"degraded\"}\n")

	proxy.Start()
	// The next call probes Redis again: this login's, or the alert monitor's count, due on the same
	// tick, which may still be in flight when the login has its answer.
	clock.Advance(breaker.DefaultProbeEvery)
	login("with Redis back")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		res := e.do(t, "GET", "/readyz", nil)
		if res.Status == 200 && string(res.Body) == ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with Redis back: %d %s, want 200 %s", res.Status, res.Body, ready)
		}
	}
}

// roundTrips counts the requests a Redis client writes: go-redis writes each command, or each
// pipeline, with one Write on its connection. (A hook would not do: the limiter's client is a clone
// with its own timeouts, which does not run the original's hooks.)
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) dialer(opts *redis.Options) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{Timeout: opts.DialTimeout}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{conn, &c.n}, nil
	}
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// Refresh and login are each held to two limits (per IP and per session; per IP and per IP and
// email): both are decided in one Redis round trip, and a refresh makes no other call to Redis.
func TestRefreshAndLoginDecideTheirLimitsInOneRedisRoundTrip(t *testing.T) {
	opts, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	trips := &roundTrips{}
	opts.Dialer = trips.dialer(opts)
	opts.PoolSize = 1 // one connection, its handshake done by the Ping below, before counting
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	prefix := "fluxauth-test:" + uuid.NewString() + ":"
	e := newEnv(t, withDeps(func(d *app.Deps) {
		d.Limiter = ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: prefix, Timeout: time.Second})
	}), withConfig(func(c *config.Config) {
		c.Rules = ratelimit.Rules{
			RefreshIP: ratelimit.Limit{Rate: 1000, Period: time.Minute}, RefreshSession: ratelimit.Limit{Rate: 1000, Period: time.Minute},
			LoginIP: ratelimit.Limit{Rate: 1000, Period: time.Minute}, LoginIPEmail: ratelimit.Limit{Rate: 1000, Period: time.Minute},
			Lockout: ratelimit.Limit{Rate: 1, Period: time.Minute, Burst: 10},
		}
	}))
	ar := e.signup(t, "trips@example.com")
	rt, sid := ar.RefreshToken, sidOf(t, ar.AccessToken)
	for i := range 3 {
		e.Clock.Advance(time.Hour) // a human pace: the refresh-rate watch (a Redis call of its own) stays quiet
		before := trips.n.Load()
		res := e.do(t, "POST", "/api/auth/refresh", map[string]string{"refreshToken": rt})
		if res.Status != 200 {
			t.Fatalf("refresh %d: %d %s", i, res.Status, res.Body)
		}
		var next authResponse
		res.json(t, &next)
		rt = next.RefreshToken
		if got := trips.n.Load() - before; got != 1 {
			t.Fatalf("refresh %d made %d Redis round trips, want 1", i, got)
		}
		// Both limits were charged by that one trip.
		for _, key := range []string{ratelimit.Key("refresh:ip", "127.0.0.1"), ratelimit.Key("refresh:session", sid)} {
			if n, err := rdb.Exists(context.Background(), prefix+key).Result(); err != nil || n != 1 {
				t.Fatalf("after refresh %d, limiter key %q exists=%d (%v), want charged", i, key, n, err)
			}
		}
	}
	before := trips.n.Load()
	if res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "trips@example.com", "password": "correct horse battery"}); res.Status != 200 {
		t.Fatalf("login: %d %s", res.Status, res.Body)
	}
	// The two login limits in one trip, then the lockout's attempt and its reset on success.
	if got := trips.n.Load() - before; got != 3 {
		t.Fatalf("login made %d Redis round trips, want 3 (limits, lockout attempt, lockout reset)", got)
	}
}
