package revocation_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/breaker"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/revocation"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

type list interface {
	Announce(ctx context.Context, sessionID string, until time.Time) error
	IsRevoked(ctx context.Context, sessionID string) (bool, error)
	Owner(ctx context.Context, sessionID string) (string, error)
}

// window is the access-token TTL plus leeway, as serve passes it.
const window = 15*time.Minute + 30*time.Second

// cacheTTL is the database list's cache, as serve's default.
const cacheTTL = 500 * time.Millisecond

// session inserts a live session of user u1 and returns its ID.
func session(tb testing.TB, store fluxauth.Store, now time.Time) string {
	tb.Helper()
	sid := uuid.NewString()
	err := store.Update(context.Background(), func(tx fluxauth.Tx) error {
		return tx.InsertRefreshToken(context.Background(), &fluxauth.RefreshToken{
			ID: uuid.NewString(), SessionID: sid, UserID: "u1", TokenHash: uuid.NewString(),
			SessionCreatedAt: now, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour),
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return sid
}

// revoke ends the session in the database, as account does before it announces.
func revoke(tb testing.TB, store fluxauth.Store, sid string, now time.Time) {
	tb.Helper()
	err := store.Update(context.Background(), func(tx fluxauth.Tx) error {
		_, err := tx.RevokeSession(context.Background(), sid, now, "test")
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func redisClient(tb testing.TB, url string) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	opts.DialerRetries = 1            // a refused connection fails at once instead of after five tries
	opts.ContextTimeoutEnabled = true // as serve sets it: contexts bound every command
	c := redis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	return c
}

// logSink collects log output and tells waiters when a message they wait for is logged.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	waiting map[string]chan struct{}
}

func (l *logSink) logger() *slog.Logger {
	return slog.New(&sinkHandler{sink: l, h: slog.NewTextHandler(&lockedWriter{l}, nil)})
}

// on returns a channel closed when msg is next logged.
func (l *logSink) on(msg string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiting == nil {
		l.waiting = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	l.waiting[msg] = ch
	return ch
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type lockedWriter struct{ l *logSink }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.buf.Write(p)
}

type sinkHandler struct {
	sink *logSink
	h    slog.Handler
}

func (s *sinkHandler) Enabled(ctx context.Context, l slog.Level) bool { return true }
func (s *sinkHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &sinkHandler{sink: s.sink, h: s.h.WithAttrs(a)}
}
func (s *sinkHandler) WithGroup(n string) slog.Handler {
	return &sinkHandler{sink: s.sink, h: s.h.WithGroup(n)}
}
func (s *sinkHandler) Handle(ctx context.Context, r slog.Record) error {
	err := s.h.Handle(ctx, r)
	s.sink.mu.Lock()
	if ch, ok := s.sink.waiting[r.Message]; ok {
		close(ch)
		delete(s.sink.waiting, r.Message)
	}
	s.sink.mu.Unlock()
	return err
}

// instance is one fluxauth instance's revocation list over a shared store and Redis.
type instance struct {
	*revocation.Redis
	lookups *countingChecker // the database lookups this instance makes
	logs    *logSink
}

func newInstance(tb testing.TB, rdb *redis.Client, prefix string, store fluxauth.Store, clock *testenv.Clock, adjust ...func(*revocation.RedisConfig)) *instance {
	tb.Helper()
	cc := &countingChecker{Checker: store}
	logs := &logSink{}
	cfg := revocation.RedisConfig{Prefix: prefix, Window: window, Clock: clock, Logger: logs.logger(),
		Breaker: breaker.New(breaker.Config{Name: "redis", Timeout: time.Second, Clock: clock, Logger: logs.logger()})}
	for _, f := range adjust {
		f(&cfg)
	}
	return &instance{Redis: revocation.NewRedis(rdb, revocation.NewDB(cc, cacheTTL, clock), cfg), lookups: cc, logs: logs}
}

// trust makes Redis believable for the instances sharing prefix: the first check finds no sentinel
// and opens the window, as on a first deployment, and the clock moves past it.
func trust(tb testing.TB, l list, clock *testenv.Clock) {
	tb.Helper()
	if _, err := l.IsRevoked(context.Background(), uuid.NewString()); err != nil {
		tb.Fatal(err)
	}
	clock.Advance(window + time.Millisecond) // the sentinel is kept in whole milliseconds, rounded up
}

func prefix() string { return "fluxauth-test:" + uuid.NewString() + ":" }

func mustRevoked(tb testing.TB, l list, sid string, want bool, what string) {
	tb.Helper()
	revoked, err := l.IsRevoked(context.Background(), sid)
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
	if revoked != want {
		tb.Fatalf("%s: revoked = %v, want %v", what, revoked, want)
	}
}

// The contract: a revocation announced on one instance is seen by another at once (Redis) or
// within the cache TTL (database); a live session is live and has its owner; an unknown session
// has none (and the database list counts it as revoked).
func TestContract(t *testing.T) {
	impls := map[string]func(t *testing.T, store fluxauth.Store, clock *testenv.Clock) (a, b list){
		"database": func(t *testing.T, store fluxauth.Store, clock *testenv.Clock) (list, list) {
			return revocation.NewDB(store, cacheTTL, clock), revocation.NewDB(store, cacheTTL, clock)
		},
		"redis": func(t *testing.T, store fluxauth.Store, clock *testenv.Clock) (list, list) {
			rdb, p := redisClient(t, testenv.RedisURL(t)), prefix()
			a, b := newInstance(t, rdb, p, store, clock), newInstance(t, rdb, p, store, clock)
			trust(t, a, clock)
			return a, b
		},
	}
	for name, mk := range impls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := sqlitetest.MustOpenDB(t)
			clock := testenv.NewClock(time.Now())
			a, b := mk(t, store, clock)
			sid := session(t, store, clock.Now())
			for _, l := range []list{a, b} {
				mustRevoked(t, l, sid, false, "live session")
				if owner, err := l.Owner(ctx, sid); err != nil || owner != "u1" {
					t.Fatalf("Owner = %q, %v; want u1", owner, err)
				}
			}
			revoke(t, store, sid, clock.Now())
			if err := a.Announce(ctx, sid, clock.Now().Add(15*time.Minute)); err != nil {
				t.Fatal(err)
			}
			mustRevoked(t, a, sid, true, "the announcing instance")
			clock.Advance(cacheTTL)
			mustRevoked(t, b, sid, true, "another instance after the cache TTL")
			unknown := uuid.NewString()
			if revoked, err := a.IsRevoked(ctx, unknown); err != nil || (name == "database" && !revoked) {
				t.Fatalf("unknown session: %v %v", revoked, err)
			}
			if _, err := a.Owner(ctx, unknown); !errors.Is(err, fluxauth.ErrNotFound) {
				t.Fatalf("Owner of an unknown session: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestRedisRevocationIsSeenAtOnceWithoutTheDatabase(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	rdb, p := redisClient(t, testenv.RedisURL(t)), prefix()
	a, b := newInstance(t, rdb, p, store, clock), newInstance(t, rdb, p, store, clock)
	trust(t, a, clock)
	live, gone := session(t, store, clock.Now()), session(t, store, clock.Now())
	revoke(t, store, gone, clock.Now())
	if err := a.Announce(ctx, gone, clock.Now().Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := b.lookups.queries.Load()
	mustRevoked(t, b, gone, true, "revoked session on another instance")
	mustRevoked(t, b, live, false, "live session")
	if n := b.lookups.queries.Load() - before; n != 0 {
		t.Fatalf("%d database lookups while Redis is believed, want 0\n%s", n, b.logs)
	}
	ttl := rdb.TTL(ctx, p+"revoked:"+gone).Val()
	if ttl <= 14*time.Minute || ttl > 15*time.Minute {
		t.Fatalf("the entry should live as long as the access tokens: %s", ttl)
	}
}

// An announcement that Redis does not take leaves another instance, which cannot reach Redis
// either, to find the revocation in the database within its cache window; once Redis answers, the
// announcement is made again.
func TestFailedAnnouncementIsFoundInTheDatabaseAndMadeAgain(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	srv := testenv.StartRedis(t)
	rdb, p := redisClient(t, srv.URL()), prefix()
	a, b := newInstance(t, rdb, p, store, clock), newInstance(t, rdb, p, store, clock)
	trust(t, a, clock)
	sid := session(t, store, clock.Now())
	mustRevoked(t, b, sid, false, "before")

	srv.Stop()
	mustRevoked(t, b, sid, false, "Redis down, before the revocation") // b's database cache now says live
	revoke(t, store, sid, clock.Now())
	until := clock.Now().Add(15 * time.Minute)
	if err := a.Announce(ctx, sid, until); err != nil {
		t.Fatalf("Announce must not fail once the database holds the revocation: %v", err)
	}
	if !strings.Contains(a.logs.String(), "redis: unavailable") {
		t.Fatalf("the failed announcement was not logged:\n%s", a.logs)
	}
	clock.Advance(cacheTTL)
	mustRevoked(t, b, sid, true, "another instance, Redis down, after its database cache window")

	srv.Start() // empty: the restart lost everything
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("Flush once Redis answers: %v", err)
	}
	ttl := rdb.PTTL(ctx, p+"revoked:"+sid).Val()
	if ttl <= 14*time.Minute || ttl > until.Sub(clock.Now()) {
		t.Fatalf("re-announced key's TTL %s, want the rest of the tokens' life", ttl)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Count(a.logs.String(), "re-announced revocations") != 1 {
		t.Fatalf("the second Flush should have had nothing left to do:\n%s", a.logs)
	}
}

// A network partition that heals: Redis kept its data, so it is believed again at once, and the
// re-announcement is what makes the other instances see the revocation.
func TestReannouncementReachesInstancesThatBelieveRedis(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	srv := testenv.StartRedis(t)
	proxy := testenv.NewProxy(t, srv.Addr())
	p := prefix()
	a := newInstance(t, redisClient(t, proxy.URL(srv.URL())), p, store, clock)
	b := newInstance(t, redisClient(t, srv.URL()), p, store, clock)
	trust(t, b, clock)
	sid := session(t, store, clock.Now())

	proxy.Stop()
	revoke(t, store, sid, clock.Now())
	if err := a.Announce(ctx, sid, clock.Now().Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	mustRevoked(t, a, sid, true, "the announcing instance, cut off from Redis")
	proxy.Start()
	clock.Advance(revocation.DefaultRetryInterval)
	mustRevoked(t, a, sid, true, "the announcing instance, Redis back but not yet told")
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before := b.lookups.queries.Load()
	mustRevoked(t, b, sid, true, "another instance after the re-announcement")
	if b.lookups.queries.Load() != before {
		t.Fatal("the answer came from the database, not from the re-announced key")
	}
}

func TestRunReannouncesEveryRetryIntervalUntilStopped(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	srv := testenv.StartRedis(t)
	proxy := testenv.NewProxy(t, srv.Addr())
	p := prefix()
	a := newInstance(t, redisClient(t, proxy.URL(srv.URL())), p, store, clock)
	direct := redisClient(t, srv.URL())
	sid := session(t, store, clock.Now())
	revoke(t, store, sid, clock.Now())
	proxy.Stop()
	if err := a.Announce(ctx, sid, clock.Now().Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	proxy.Start()
	reannounced := a.logs.on("revocation: re-announced revocations to redis")
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		a.Run(runCtx)
		close(done)
	}()
	if at := clock.WaitTimers(t, 1); !at[0].Equal(clock.Now().Add(revocation.DefaultRetryInterval)) {
		t.Fatalf("Run re-announces at %v, want %v", at[0], clock.Now().Add(revocation.DefaultRetryInterval))
	}
	clock.Advance(revocation.DefaultRetryInterval - time.Microsecond)
	if n := direct.Exists(ctx, p+"revoked:"+sid).Val(); n != 0 {
		t.Fatal("re-announced before the retry interval")
	}
	clock.Advance(time.Microsecond)
	select {
	case <-reannounced:
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not re-announce at its interval:\n%s", a.logs)
	}
	stop()
	<-done
	if n := direct.Exists(ctx, p+"revoked:"+sid).Val(); n != 1 {
		t.Fatal("the re-announced key is not in Redis")
	}
}

// Redis restarted empty: a revocation made before the loss holds on every instance, because every
// instance reads the same sentinel and uses the database until no older access token is alive.
func TestRedisThatLostItsDataIsNotBelievedForAnAccessTokenLifetime(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	srv := testenv.StartRedis(t)
	rdb, p := redisClient(t, srv.URL()), prefix()
	a, b := newInstance(t, rdb, p, store, clock), newInstance(t, rdb, p, store, clock)
	trust(t, a, clock)
	before, live := session(t, store, clock.Now()), session(t, store, clock.Now())
	revoke(t, store, before, clock.Now())
	if err := a.Announce(ctx, before, clock.Now().Add(window)); err != nil {
		t.Fatal(err)
	}
	mustRevoked(t, b, before, true, "through Redis, before the loss")

	srv.Stop()
	srv.Start()
	lost := clock.Now()
	c := newInstance(t, rdb, p, store, clock) // an instance that never saw the revocation
	for name, l := range map[string]list{"a": a, "b": b, "c": c} {
		mustRevoked(t, l, before, true, name+", after Redis lost its data")
	}
	var from int64
	if err := rdb.Get(ctx, p+"revocation:trusted-from").Scan(&from); err != nil {
		t.Fatalf("sentinel: %v", err)
	}
	if got := time.UnixMilli(from); got.Before(lost.Add(window)) || got.After(lost.Add(window+time.Second)) {
		t.Fatalf("Redis is believed again from %s, want %s: when every access token from before the loss has expired", got, lost.Add(window))
	}

	// A revocation during the window still goes to Redis, to be believed there afterwards.
	during := session(t, store, clock.Now())
	revoke(t, store, during, clock.Now())
	if err := a.Announce(ctx, during, clock.Now().Add(window)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(window - time.Second)
	n := c.lookups.queries.Load()
	mustRevoked(t, c, live, false, "live session, inside the window")
	if c.lookups.queries.Load() == n {
		t.Fatal("inside the window the database must answer")
	}
	clock.Advance(time.Second + time.Millisecond) // the sentinel is kept in whole milliseconds, rounded up
	d := newInstance(t, rdb, p, store, clock)
	mustRevoked(t, d, during, true, "a revocation announced during the window, after it")
	mustRevoked(t, d, live, false, "live session, after the window")
	if q := d.lookups.queries.Load(); q != 0 {
		t.Fatalf("%d database lookups after the window, want 0: Redis is believed again", q)
	}
}

// When the re-announcement queue is full, the revocation that does not fit is not lost: Redis is
// marked untrusted, for every instance, until its access tokens have expired.
func TestAFullQueueMakesRedisUntrustedUntilTheDroppedTokensExpire(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	srv := testenv.StartRedis(t)
	proxy := testenv.NewProxy(t, srv.Addr())
	p := prefix()
	a := newInstance(t, redisClient(t, proxy.URL(srv.URL())), p, store, clock, func(c *revocation.RedisConfig) { c.MaxPending = 1 })
	b := newInstance(t, redisClient(t, srv.URL()), p, store, clock)
	trust(t, b, clock)
	kept, dropped, live := session(t, store, clock.Now()), session(t, store, clock.Now()), session(t, store, clock.Now())

	proxy.Stop()
	revoke(t, store, kept, clock.Now())
	revoke(t, store, dropped, clock.Now())
	if err := a.Announce(ctx, kept, clock.Now().Add(window)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	droppedUntil := clock.Now().Add(window)
	if err := a.Announce(ctx, dropped, droppedUntil); err != nil {
		t.Fatal(err)
	}
	proxy.Start()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mustRevoked(t, b, kept, true, "the queued revocation, re-announced")
	mustRevoked(t, b, dropped, true, "the dropped revocation")
	clock.Advance(droppedUntil.Sub(clock.Now()) + time.Millisecond)
	n := b.lookups.queries.Load()
	mustRevoked(t, b, live, false, "live session once the dropped tokens have expired")
	if b.lookups.queries.Load() != n {
		t.Fatal("Redis should be believed again once the dropped revocation's tokens have expired")
	}
}

// While Redis is unreachable, checks go to the database without trying Redis on every request, and
// the failure is logged without the client's credentials.
func TestUnreachableRedisIsSkippedUntilTheBreakerProbes(t *testing.T) {
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	var dials atomic.Int64
	const password = "hunter2-redis-password"
	dead := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:1", Password: password, MaxRetries: -1, DialerRetries: 1, DialTimeout: 100 * time.Millisecond,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	t.Cleanup(func() { dead.Close() })
	l := newInstance(t, dead, prefix(), store, clock)
	sid := session(t, store, clock.Now())
	revoke(t, store, sid, clock.Now())
	mustRevoked(t, l, sid, true, "Redis unreachable: the database answers")
	if err := l.Announce(context.Background(), sid, clock.Now().Add(window)); err != nil {
		t.Fatal(err)
	}
	other := session(t, store, clock.Now())
	mustRevoked(t, l, other, false, "live session, Redis unreachable")
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connection attempts within one probe interval, want 1", n)
	}
	clock.Advance(breaker.DefaultProbeEvery)
	mustRevoked(t, l, other, false, "live session, one probe interval later")
	if n := dials.Load(); n != 2 {
		t.Fatalf("%d connection attempts after the probe interval, want 2: Redis is tried again", n)
	}
	logs := l.logs.String()
	if !strings.Contains(logs, "redis: unavailable") || strings.Count(logs, "redis: unavailable") != 1 {
		t.Fatalf("want the outage logged once:\n%s", logs)
	}
	if strings.Contains(logs, password) {
		t.Fatalf("the log carries the Redis password:\n%s", logs)
	}
}

// The breaker is shared with the rate limiter: once it has seen Redis fail, a check goes straight to
// the database, without a call of its own to wait out.
func TestAnOutageTheSharedBreakerSawSendsChecksToTheDatabaseAtOnce(t *testing.T) {
	store := sqlitetest.MustOpenDB(t)
	clock := testenv.NewClock(time.Now())
	var dials atomic.Int64
	dead := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	t.Cleanup(func() { dead.Close() })
	shared := breaker.New(breaker.Config{Name: "redis", Clock: clock})
	l := newInstance(t, dead, prefix(), store, clock, func(c *revocation.RedisConfig) { c.Breaker = shared })
	// The rate limiter's call failed first.
	shared.Do(context.Background(), "rate limit", func(context.Context) error { return errors.New("i/o timeout") })
	sid := session(t, store, clock.Now())
	revoke(t, store, sid, clock.Now())
	mustRevoked(t, l, sid, true, "Redis failing for the limiter: the database answers")
	if n := dials.Load(); n != 0 {
		t.Fatalf("%d connection attempts after the shared breaker opened, want 0", n)
	}
	if l.lookups.queries.Load() != 1 {
		t.Fatalf("%d database lookups, want 1", l.lookups.queries.Load())
	}
}

// quietRedis keeps go-redis's own dial errors, expected here, out of the test output.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{})
	os.Exit(m.Run())
}
