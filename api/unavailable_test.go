package api_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// eventsDown is a store whose audit log cannot be reached while down is set, while the rest of the
// store works.
type eventsDown struct {
	fluxauth.Backend
	down *atomic.Bool
}

func (s eventsDown) InsertEvents(ctx context.Context, events ...*fluxauth.SecurityEvent) error {
	if s.down.Load() {
		return fmt.Errorf("%w: postgres: connection refused", fluxauth.ErrUnavailable)
	}
	return s.Backend.InsertEvents(ctx, events...)
}

// A 503 names the dependency that failed: here the event log, which a failed login must reach
// before it may answer 401.
func TestAFailedLoginTheAuditLogCannotTakeAnswers503AuditUnavailable(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	e := newEnv(t, withStore(eventsDown{sqlitetest.MustOpenDB(t), &down}), withDeps(func(d *app.Deps) {
		d.Audit = audit.Config{FlushInterval: time.Millisecond, RetryInterval: 10 * time.Millisecond}
	}))
	// The audit log is back before the service stops, so the shutdown writes what it kept.
	t.Cleanup(func() { down.Store(false) })
	rec := e.Recorder
	// The recorder learns the database is down from its first failed write.
	deadline := time.Now().Add(5 * time.Second)
	for rec.Record(context.Background(), &fluxauth.SecurityEvent{ID: uuid.NewString(), Type: "probe"}) == nil {
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
	dead := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { dead.Close() })
	e := newEnv(t, withDeps(func(d *app.Deps) {
		d.Limiter = ratelimit.NewRedis(dead, ratelimit.RedisConfig{Timeout: time.Second})
	}))
	res := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "nobody@example.com", "password": "wrong password"})
	if res.Status != 503 || res.errorCode(t) != fluxauth.ECacheUnavailable {
		t.Fatalf("login with the limiter's Redis down: %d %s, want 503 cache_unavailable", res.Status, res.Body)
	}
}
