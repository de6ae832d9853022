package ratelimit_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// redisServer is a redis-server child process of the test, on its own port, so a test can stop,
// freeze and restart it without touching the machine's Redis that other tests share.
type redisServer struct {
	tb   testing.TB
	port int
	bin  string
	cmd  *exec.Cmd
}

// startRedisServer starts a private redis-server (no persistence) on a free port. It skips tb when
// redis-server is not installed, or fails it under FLUXAUTH_TEST_REQUIRE_SERVICES=1.
func startRedisServer(tb testing.TB) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testenv.Required() {
			tb.Fatalf("redis-server not found but FLUXAUTH_TEST_REQUIRE_SERVICES=1: %v", err)
		}
		tb.Skipf("redis-server not installed: %v", err)
	}
	s := &redisServer{tb: tb, port: freePort(tb), bin: bin}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

func (s *redisServer) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(s.port) + "/0" }

// Start runs the server and waits until it answers PING.
func (s *redisServer) Start() {
	s.tb.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(s.port), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := rdb.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server on port %d did not answer: %v", s.port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server, as a crash would, and waits for it to exit.
func (s *redisServer) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a frozen process must run to die
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Freeze stops the process without closing its socket: connections stay open and nothing answers,
// as with an overloaded or partitioned Redis.
func (s *redisServer) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server.
func (s *redisServer) Thaw() { s.signal(syscall.SIGCONT) }

func (s *redisServer) signal(sig syscall.Signal) {
	s.tb.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("signal redis-server: %v", err)
	}
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
