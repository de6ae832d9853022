package ratelimit_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/redis/go-redis/v9"
)

// mustRedisClient connects to addr (a redis:// URL) the way cmd/fluxauth should: with context
// deadlines honoured. It closes the client when tb ends.
func mustRedisClient(tb testing.TB, url string) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("parse redis URL: %v", err)
	}
	opt.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opt)
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// mustSharedRedis returns a client on the machine's Redis (FLUXAUTH_TEST_REDIS_URL), checked with a
// PING.
func mustSharedRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := mustRedisClient(tb, testenv.RedisURL(tb))
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("redis at FLUXAUTH_TEST_REDIS_URL: %v", err)
	}
	return rdb
}

var prefixSeq atomic.Int64

// uniquePrefix returns a key prefix no other test (or earlier run) uses, and deletes its keys when
// tb ends, so tests share the machine's Redis without colliding or leaving litter.
func uniquePrefix(tb testing.TB, rdb *redis.Client) string {
	tb.Helper()
	name := strings.NewReplacer(" ", "_", "/", ".", "*", "", "?", "", "[", "", "]", "").Replace(tb.Name())
	prefix := fmt.Sprintf("fluxauth:rl:test:%s:%d.%d:", name, time.Now().UnixNano(), prefixSeq.Add(1))
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// freePort returns a loopback TCP port nothing listens on.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// logRecorder is a slog.Handler keeping every record, so tests can count the warnings.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.records = append(r.records, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// count returns how many records of level were logged.
func (r *logRecorder) count(level slog.Level) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.records {
		if rec.Level == level {
			n++
		}
	}
	return n
}

// allowedOf makes n Allow calls on key and returns how many were allowed, failing tb on errors.
func allowedOf(tb testing.TB, lim ratelimit.Limiter, key string, l ratelimit.Limit, n int) int {
	tb.Helper()
	allowed := 0
	for range n {
		r, err := lim.Allow(context.Background(), key, l)
		if err != nil {
			tb.Fatalf("Allow(%q): %v", key, err)
		}
		if r.Allowed {
			allowed++
		}
	}
	return allowed
}

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the outage tests cause hundreds on purpose.
	redis.SetLogger(quietRedisLogger{})
	os.Exit(m.Run())
}

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}
