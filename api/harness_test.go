package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/feed"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/internal/testserver"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/token"
)

// env is one fluxauth server under test, built by package app as serve builds it, with everything
// it is made of, so tests can reach behind the API (the clock, the store, the logs).
type env struct {
	URL      string
	App      *app.App
	Store    fluxauth.Backend
	Clock    *testenv.Clock
	Accounts *account.Service
	Recorder *audit.Recorder
	Hub      *feed.Hub
	Logs     *testenv.Buffer
	conns    *connTracker
}

type envOption func(*envConfig)

type envConfig struct {
	cfg   *config.Config
	deps  app.Deps
	clock *testenv.Clock
}

// withConfig adjusts the server's configuration; several compose in order.
func withConfig(f func(*config.Config)) envOption { return func(e *envConfig) { f(e.cfg) } }

// withDeps adjusts what the server is given instead of what it builds from its configuration.
func withDeps(f func(*app.Deps)) envOption { return func(e *envConfig) { f(&e.deps) } }

// withFeed tunes the live feed's hub and the streams' heartbeat interval (0: the default).
func withFeed(c feed.Config, heartbeat time.Duration) envOption {
	return withDeps(func(d *app.Deps) { d.Feed, d.Heartbeat = c, heartbeat })
}

func withStore(s fluxauth.Backend) envOption { return withDeps(func(d *app.Deps) { d.Store = s }) }
func withKeys(k *token.KeySet) envOption     { return withDeps(func(d *app.Deps) { d.Keys = k }) }
func withClock(k *testenv.Clock) envOption   { return func(c *envConfig) { c.clock = k } }

// withCORSOrigins sets the origins allowed to call the API from their pages.
func withCORSOrigins(o ...string) envOption {
	return withConfig(func(c *config.Config) { c.CORSOrigins = o })
}

// withRedis makes the server use Redis at url as serve does (rate limits behind the fallback,
// revocations in front of the database, one breaker), its keys under prefix and every call given a
// second.
func withRedis(url, prefix string) envOption {
	return func(e *envConfig) {
		e.cfg.RedisURL, e.cfg.RedisTimeout = url, time.Second
		e.deps.RedisPrefix = prefix
	}
}

// newEnv starts a complete fluxauth server on loopback over a fresh SQLite database unless another
// store is given.
func newEnv(tb testing.TB, opts ...envOption) *env {
	tb.Helper()
	logs := &testenv.Buffer{}
	cfg := testserver.Config(tb)
	cfg.LogFormat, cfg.LogLevel = "json", "debug"
	// Generous limits so tests that sign many users up from one address are not refused; the rate
	// limit tests install the defaults explicitly.
	cfg.Rules = config.Default().Rules
	cfg.Rules.Signup = ratelimit.Limit{Rate: 1000, Period: time.Minute}
	cfg.Rules.LoginIP = ratelimit.Limit{Rate: 1000, Period: time.Minute}
	cfg.Rules.LoginIPEmail = ratelimit.Limit{Rate: 1000, Period: time.Minute}
	cfg.Rules.RefreshIP = ratelimit.Limit{Rate: 1000, Period: time.Minute}
	ec := envConfig{cfg: cfg, deps: app.Deps{LogOutput: logs, Audit: audit.Config{FlushInterval: time.Millisecond}}}
	for _, o := range opts {
		o(&ec)
	}
	if ec.clock == nil {
		ec.clock = testenv.NewClock(time.Now())
	}
	ec.deps.Clock = ec.clock
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	conns := &connTracker{Listener: ln, open: map[net.Conn]struct{}{}}
	ec.deps.Listener = conns
	a := testserver.Start(tb, ec.cfg, ec.deps)
	return &env{URL: a.URL(), App: a, Store: a.Store, Clock: ec.clock, Accounts: a.Accounts, Recorder: a.Recorder, Hub: a.Hub,
		Logs: logs, conns: conns}
}

// connTracker is the server's listener, keeping its connections so a test can cut them.
type connTracker struct {
	net.Listener
	mu   sync.Mutex
	open map[net.Conn]struct{}
}

func (l *connTracker) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open[c] = struct{}{}
	return &trackedConn{Conn: c, l: l}, nil
}

type trackedConn struct {
	net.Conn
	l    *connTracker
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c.Conn)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// closeClientConnections cuts every connection the server has open, idle or not, as a network
// failure would.
func (e *env) closeClientConnections() {
	e.conns.mu.Lock()
	defer e.conns.mu.Unlock()
	for c := range e.conns.open {
		c.Close()
		delete(e.conns.open, c)
	}
}

// response is a decoded HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) json(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// errorCode returns the code of a standard error body, failing if the body is not one.
func (r *response) errorCode(tb testing.TB) string {
	tb.Helper()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.json(tb, &body)
	if body.Error.Code == "" || body.Error.Message == "" {
		tb.Fatalf("not a standard error body: %s", r.Body)
	}
	return body.Error.Code
}

// do sends a request; body may be nil, a string (sent as is), an io.Reader (sent chunked) or a value
// encoded as JSON; a body goes with Content-Type: application/json unless headers replace it, or
// remove it with an empty value. It fails tb
// on a transport error, so call it only from the test's goroutine; other goroutines use send.
func (e *env) do(tb testing.TB, method, path string, body any, headers ...string) *response {
	tb.Helper()
	res, err := e.send(method, path, body, headers...)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// send is do that returns its error instead of failing the test: FailNow only works on the test's
// goroutine, and from any other one a transport error would surface as a nil response.
func (e *env) send(method, path string, body any, headers ...string) (*response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader: // sent chunked: hidden behind a MultiReader, the client knows no length
		rd = io.MultiReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i]) // "" removes a header, e.g. the Content-Type
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: data}, nil
}

// authResponse mirrors the AuthResponse old clients read (api/auth.go's authResponse).
type authResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	ExpiresIn    int    `json:"expiresIn"`
	TokenType    string `json:"tokenType"`
	User         struct {
		ID            string `json:"id"`
		Email         string `json:"email"`
		Name          string `json:"name"`
		UserType      string `json:"userType"`
		EmailVerified *bool  `json:"emailVerified"`
	} `json:"user"`
	DeviceToken string `json:"deviceToken"`
}

// signup creates an account and returns its AuthResponse, failing unless it got 201.
func (e *env) signup(tb testing.TB, email string, extra ...string) *authResponse {
	tb.Helper()
	body := map[string]string{"email": email, "password": "correct horse battery", "name": "Test User"}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i]] = extra[i+1]
	}
	res := e.do(tb, "POST", "/api/auth/signup", body)
	if res.Status != http.StatusCreated {
		tb.Fatalf("signup: %d %s", res.Status, res.Body)
	}
	var ar authResponse
	res.json(tb, &ar)
	return &ar
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// events returns the audit log's events of one type, newest first, once the queue is written.
func (e *env) events(tb testing.TB, typ string) []*fluxauth.SecurityEvent {
	tb.Helper()
	if err := e.Recorder.Flush(context.Background()); err != nil {
		tb.Fatal(err)
	}
	evs, err := e.Store.ListEvents(context.Background(), fluxauth.EventFilter{Type: typ, Limit: 500})
	if err != nil {
		tb.Fatal(err)
	}
	return evs
}
