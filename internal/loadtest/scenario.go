package loadtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Scenarios lists the names -scenario accepts.
var Scenarios = []string{"refresh", "me", "login", "signup", "mixed", "faults"}

// noIdleUser is the method of a target handed out when no user was free in time. It is not a valid
// HTTP method, so vegeta records the request as failed without sending anything; the summary
// recognises it.
const noIdleUser = "NO IDLE USER"

// userFragment carries a user's index from a target to its result. A URL fragment is never sent to
// the server, yet vegeta copies the target URL into the result: the response can be matched to its
// user without touching what the server sees.
const userFragment = "#u="

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// failingLogin marks, in a target's URL fragment (never sent), a login made to fail: its 401
// invalid_credentials is the answer asked for.
const failingLogin = "#failing-login"

// IsFailingLogin reports whether r answers one of the logins the faults scenario makes fail on
// purpose, with an email no account has.
func IsFailingLogin(r *vegeta.Result) bool { return strings.HasSuffix(r.URL, failingLogin) }

// ErrorCode returns the code of a fluxauth error answer, or a description of a body that is not one;
// never the body itself.
func ErrorCode(r *vegeta.Result) string { return errorCode(r.Body) }

// Pool hands users out so that each has at most one request of its refresh chain in flight: a
// user is taken from the idle queue when its request is built and put back only when its answer
// (and the new refresh token in it) has been read. The queue is FIFO, so users take turns evenly.
type Pool struct {
	users   []*User
	idle    chan int
	retired atomic.Int64
}

// NewPool queues every user as idle.
func NewPool(users []*User) *Pool {
	p := &Pool{users: users, idle: make(chan int, len(users))}
	for i := range users {
		p.idle <- i
	}
	return p
}

// acquire takes an idle user, waiting at most wait for one.
func (p *Pool) acquire(wait time.Duration) (int, bool) {
	select {
	case i := <-p.idle:
		return i, true
	default:
	}
	if wait <= 0 {
		return -1, false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case i := <-p.idle:
		return i, true
	case <-t.C:
		return -1, false
	}
}

// release puts a user back. It never blocks: the queue holds every user and a user is in it at most
// once, because only the holder of a user releases it.
func (p *Pool) release(i int) { p.idle <- i }

// Retired is how many users the server signed out (their chain ended) during the run.
func (p *Pool) Retired() int { return int(p.retired.Load()) }

// refreshTarget fills t with the next refresh of an idle user's chain. Waiting for a user counts in
// the request's latency (vegeta has already stamped its start): in an open loop, a request the
// users cannot send yet is a request delayed.
func (p *Pool) refreshTarget(base string, wait time.Duration, t *vegeta.Target) bool {
	i, ok := p.acquire(wait)
	if !ok {
		return false
	}
	body, _ := json.Marshal(map[string]string{"refreshToken": p.users[i].refresh})
	t.Method = http.MethodPost
	t.URL = base + "/api/auth/refresh" + userFragment + strconv.Itoa(i)
	t.Body = body
	t.Header = jsonHeader
	return true
}

// observe advances a user's chain with the answer to its refresh and frees the user. It is called
// once per result, from the one goroutine that reads vegeta's results.
func (p *Pool) observe(r *vegeta.Result) {
	k := strings.LastIndex(r.URL, userFragment)
	if k < 0 {
		return
	}
	i, err := strconv.Atoi(r.URL[k+len(userFragment):])
	if err != nil || i < 0 || i >= len(p.users) {
		return
	}
	u := p.users[i]
	switch r.Code {
	case http.StatusOK:
		var ar authResponse
		if json.Unmarshal(r.Body, &ar) == nil && ar.RefreshToken != "" {
			u.refresh = ar.RefreshToken
			if ar.AccessToken != "" {
				u.access.Store(&ar.AccessToken)
			}
		}
	case http.StatusUnauthorized:
		// The session is over; presenting its tokens again would only be refused. Any other failure
		// (a timeout, a 5xx) keeps the old token: fluxauth accepts a spent token again when its
		// successor was never used, which is exactly a lost response.
		switch errorCode(r.Body) {
		case "refresh_token_reused", "refresh_token_revoked", "refresh_token_expired", "invalid_refresh_token":
			u.retired = true
			p.retired.Add(1)
			return
		}
	}
	p.release(i)
}

// Workload is one scenario ready to run: vegeta's targeter and what to do with each result.
type Workload struct {
	Name     string
	Targeter vegeta.Targeter
	// Observe, when set, is called with every result in the order they arrive, from one goroutine.
	Observe func(*vegeta.Result)
	// Pool is the refresh chains, for the scenarios that have them.
	Pool *Pool
}

// WorkloadConfig is what a scenario needs.
type WorkloadConfig struct {
	Base  string  // target base URL
	Users []*User // from Setup; signup needs none
	RunID string  // keeps signup emails unique across runs
	// UserWait is how long a refresh waits for an idle user before it is counted as failed.
	UserWait time.Duration
}

// NewWorkload builds the named scenario.
func NewWorkload(name string, cfg WorkloadConfig) (*Workload, error) {
	if name != "signup" && len(cfg.Users) == 0 {
		return nil, fmt.Errorf("scenario %s needs users", name)
	}
	if cfg.UserWait <= 0 {
		cfg.UserWait = 10 * time.Second
	}
	w := &Workload{Name: name}
	var n atomic.Uint64
	users := cfg.Users
	me := func(t *vegeta.Target) {
		u := users[int(n.Add(1)-1)%len(users)]
		t.Method = http.MethodGet
		t.URL = cfg.Base + "/api/auth/me"
		t.Header = http.Header{"Authorization": {"Bearer " + u.accessToken()}}
	}
	var loginBodies [][]byte
	if name == "login" || name == "mixed" || name == "faults" {
		for _, u := range users {
			b, _ := json.Marshal(map[string]string{"email": u.Email, "password": u.password})
			loginBodies = append(loginBodies, b)
		}
	}
	login := func(t *vegeta.Target, k uint64) {
		t.Method = http.MethodPost
		t.URL = cfg.Base + "/api/auth/login"
		t.Body = loginBodies[int(k)%len(loginBodies)]
		t.Header = jsonHeader
	}
	// An unknown email, new each time: the failed-login lockout never builds up on it, so every one
	// is answered 401 invalid_credentials and records one failed_login event.
	failing := func(t *vegeta.Target, k uint64) {
		b, _ := json.Marshal(map[string]string{"email": fmt.Sprintf("fluxload-%s-miss-%d@example.com", cfg.RunID, k), "password": "not-the-password"})
		t.Method = http.MethodPost
		t.URL = cfg.Base + "/api/auth/login" + failingLogin
		t.Body = b
		t.Header = jsonHeader
	}
	refusal := func(t *vegeta.Target) {
		t.Method = noIdleUser
		t.URL = cfg.Base + "/api/auth/refresh"
	}
	switch name {
	case "refresh":
		w.Pool = NewPool(users)
		w.Observe = w.Pool.observe
		w.Targeter = func(t *vegeta.Target) error {
			if !w.Pool.refreshTarget(cfg.Base, cfg.UserWait, t) {
				refusal(t)
			}
			return nil
		}
	case "me":
		w.Targeter = func(t *vegeta.Target) error { me(t); return nil }
	case "login":
		w.Targeter = func(t *vegeta.Target) error { login(t, n.Add(1)-1); return nil }
	case "signup":
		pw := newPassword()
		w.Targeter = func(t *vegeta.Target) error {
			b, _ := json.Marshal(map[string]string{
				"email":    fmt.Sprintf("fluxload-%s-s%d@example.com", cfg.RunID, n.Add(1)),
				"password": pw, "name": "Load Test",
			})
			t.Method = http.MethodPost
			t.URL = cfg.Base + "/api/auth/signup"
			t.Body = b
			t.Header = jsonHeader
			return nil
		}
	case "mixed":
		// A session's day, roughly: mostly reads of the current user, a refresh every so often, a
		// rare password sign-in. A refresh finding no idle user becomes a read rather than a wait.
		w.Pool = NewPool(users)
		w.Observe = w.Pool.observe
		var mix atomic.Uint64
		w.Targeter = func(t *vegeta.Target) error {
			k := mix.Add(1) - 1
			switch r := k % 100; {
			case r == 0:
				login(t, k/100)
			case r <= 19 && w.Pool.refreshTarget(cfg.Base, 0, t):
			default:
				me(t)
			}
			return nil
		}
	case "faults":
		// What the fault tests run through an outage: the mixed scenario's kinds of requests, with
		// more sign-ins, half of them failing on purpose. Per 20 requests: one failing login, one
		// login with a user's password, four refreshes (a /me when no user is idle), 14 /me.
		w.Pool = NewPool(users)
		w.Observe = w.Pool.observe
		var mix atomic.Uint64
		w.Targeter = func(t *vegeta.Target) error {
			k := mix.Add(1) - 1
			switch r := k % 20; {
			case r == 0:
				failing(t, k)
			case r == 10:
				login(t, k/20)
			case r%5 == 1 && w.Pool.refreshTarget(cfg.Base, 0, t):
			default:
				me(t)
			}
			return nil
		}
	default:
		return nil, fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(Scenarios, ", "))
	}
	return w, nil
}
