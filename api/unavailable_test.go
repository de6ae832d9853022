package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// eventsDown is an audit log whose database cannot be reached, while the rest of the store works.
type eventsDown struct{}

func (eventsDown) InsertEvents(context.Context, ...*fluxauth.SecurityEvent) error {
	return fmt.Errorf("%w: postgres: connection refused", fluxauth.ErrUnavailable)
}

// A 503 names the dependency that failed: here the event log, which a failed login must reach
// before it may answer 401.
func TestAFailedLoginTheAuditLogCannotTakeAnswers503AuditUnavailable(t *testing.T) {
	rec := audit.New(eventsDown{}, slog.New(slog.NewTextHandler(io.Discard, nil)), audit.Config{FlushInterval: time.Millisecond, RetryInterval: 10 * time.Millisecond})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		rec.Close(ctx)
	})
	e := newEnv(t, withAccounts(func(a *account.Service) { a.Events = rec }))
	// The recorder learns the database is down from its first failed write.
	deadline := time.Now().Add(5 * time.Second)
	for rec.Record(context.Background(), &fluxauth.SecurityEvent{ID: "00000000-0000-7000-8000-000000000001", Type: "probe"}) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the recorder never noticed its database was down")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "nobody@example.com", "password": "wrong password"})
	if res.Status != 503 || res.errorCode(t) != fluxauth.EAuditUnavailable {
		t.Fatalf("failed login with the event log down: %d %s, want 503 audit_unavailable", res.Status, res.Body)
	}
}

// Without its fallback, the Redis limiter's failure is Redis's, not the database's.
func TestARateLimitRedisCannotAnswerWithoutAFallbackIs503CacheUnavailable(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { dead.Close() })
	e := newEnv(t, withAccounts(func(a *account.Service) {
		a.Limiter = ratelimit.NewRedis(dead, ratelimit.RedisConfig{Timeout: time.Second})
	}))
	res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "nobody@example.com", "password": "wrong password"})
	if res.Status != 503 || res.errorCode(t) != fluxauth.ECacheUnavailable {
		t.Fatalf("login with the limiter's Redis down: %d %s, want 503 cache_unavailable", res.Status, res.Body)
	}
}

// freePort returns a loopback TCP port nothing listens on.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
