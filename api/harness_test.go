package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/dashboard"
	"github.com/fluxstudio/fluxauth/feed"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/netaddr"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/internal/testserver"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
	"github.com/fluxstudio/fluxauth/token"
)

// env is one fluxauth server under test with everything it is made of, so tests can reach behind
// the API (the clock, the store, the logs).
type env struct {
	URL      string
	Store    fluxauth.Store
	Clock    *testenv.Clock
	Accounts *account.Service
	Recorder *audit.Recorder
	Hub      *feed.Hub
	Logs     *syncBuffer
	server   *httptest.Server
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type envOption func(*envConfig)

type envConfig struct {
	store    fluxauth.Store
	keys     *token.KeySet
	clock    *testenv.Clock
	accounts func(*account.Service)
	degraded func() []string
	origins  []string
	feed     feed.Config
	beat     time.Duration
}

// withFeed tunes the live feed's hub and the streams' heartbeat interval (0: the default).
func withFeed(c feed.Config, heartbeat time.Duration) envOption {
	return func(e *envConfig) { e.feed, e.beat = c, heartbeat }
}

func withStore(s fluxauth.Store) envOption { return func(c *envConfig) { c.store = s } }
func withKeys(k *token.KeySet) envOption   { return func(c *envConfig) { c.keys = k } }
func withClock(k *testenv.Clock) envOption { return func(c *envConfig) { c.clock = k } }

// withCORSOrigins sets the origins allowed to call the API from their pages.
func withCORSOrigins(o ...string) envOption { return func(c *envConfig) { c.origins = o } }

// withDegraded sets the server's Degraded, as serve does when Redis is configured.
func withDegraded(f func() []string) envOption { return func(c *envConfig) { c.degraded = f } }

// withAccounts adjusts the account service; several compose in order.
func withAccounts(f func(*account.Service)) envOption {
	return func(c *envConfig) {
		prev := c.accounts
		c.accounts = func(a *account.Service) {
			if prev != nil {
				prev(a)
			}
			f(a)
		}
	}
}

// newEnv starts a complete fluxauth server on loopback over a fresh SQLite database unless another
// store is given.
func newEnv(tb testing.TB, opts ...envOption) *env {
	tb.Helper()
	cfg := envConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.store == nil {
		cfg.store = sqlitetest.MustOpenDB(tb)
	}
	if cfg.clock == nil {
		cfg.clock = testenv.NewClock(time.Now())
	}
	logs := &syncBuffer{}
	logger := slog.New(api.NewLogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	// Generous limits so tests that sign many users up from one address are not refused; the rate
	// limit tests install the defaults explicitly.
	rules := config.Default().Rules
	rules.Signup = ratelimit.Limit{Rate: 1000, Period: time.Minute}
	rules.LoginIP = ratelimit.Limit{Rate: 1000, Period: time.Minute}
	rules.LoginIPEmail = ratelimit.Limit{Rate: 1000, Period: time.Minute}
	rules.RefreshIP = ratelimit.Limit{Rate: 1000, Period: time.Minute}
	acc, recorder := testserver.NewAccounts(tb, cfg.store, testserver.Options{
		Clock: cfg.clock, Keys: cfg.keys, Logger: logger, Flush: time.Millisecond, Rules: &rules,
	})
	if cfg.accounts != nil {
		cfg.accounts(acc)
	}
	// Tests speak for other clients through X-Forwarded-For, as a load balancer on loopback would.
	proxies, err := netaddr.ParseProxyList("127.0.0.1/32, ::1/128")
	if err != nil {
		tb.Fatal(err)
	}
	// The live feed as serve runs it: woken by PostgreSQL's notifications or the recorder.
	hub := feed.New(cfg.store.(fluxauth.EventFeedStore), cfg.clock, logger, cfg.feed)
	hub.React(fluxauth.EventAccountUnlocked, acc.ClearLocalLockout)
	feedCtx, stopFeed := context.WithCancel(context.Background())
	var feedRunning sync.WaitGroup
	feedRunning.Add(2)
	go func() { defer feedRunning.Done(); hub.Run(feedCtx) }()
	go func() { defer feedRunning.Done(); hub.Listen(feedCtx, cfg.store, recorder) }()
	tb.Cleanup(func() { stopFeed(); feedRunning.Wait() })
	srv := &api.Server{Logger: logger, DB: cfg.store, Accounts: acc, Admin: cfg.store.(api.AdminStore), Feed: hub, Heartbeat: cfg.beat,
		TrustedProxies: proxies, Degraded: cfg.degraded, CORSOrigins: cfg.origins, Dashboard: dashboard.Handler()}
	ts := httptest.NewServer(srv.Handler())
	tb.Cleanup(ts.Close)
	tb.Cleanup(hub.Close) // before ts.Close, which waits for the streams
	return &env{URL: ts.URL, Store: cfg.store, Clock: cfg.clock, Accounts: acc, Recorder: recorder, Hub: hub, Logs: logs, server: ts}
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

// do sends a request; body may be nil, a string (sent as is) or a value encoded as JSON. It fails tb
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

// authResponse mirrors SPEC.md's AuthResponse.
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
