package app_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/internal/testserver"
	"github.com/fluxstudio/fluxauth/mail"
	"github.com/fluxstudio/fluxauth/oidc"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// fileConfig is a test configuration on its own SQLite file and key file, as serve runs with them.
func fileConfig(t *testing.T) *config.Config {
	cfg := testserver.Config(t)
	dir := t.TempDir()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "fluxauth.db")
	cfg.SigningKeys = filepath.Join(dir, "fluxauth-keys.json")
	return cfg
}

// An App built from the configuration alone opens and migrates its database, makes its key file,
// and is built with everything serve runs: both identity providers, mail as configured, and Redis
// behind the fallback.
func TestNewBuildsWhatTheConfigurationNames(t *testing.T) {
	cfg := fileConfig(t)
	cfg.SMTP, _ = mail.ParseSMTPURL("log:")
	cfg.MailFrom, cfg.Links.ResetURL, cfg.Links.VerifyURL = "a@localhost", "http://x/r?token={token}", "http://x/v?token={token}"
	cfg.RedisURL = "redis://" + testenv.FreeAddr(t) + "/0" // nobody there: the fallback answers
	logs := &testenv.Buffer{}
	a, err := app.New(context.Background(), cfg, app.Deps{LogOutput: logs})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	if _, err := a.Store.LastEventSeq(context.Background()); err != nil {
		t.Fatalf("the database is not migrated: %v", err)
	}
	if !strings.Contains(logs.String(), "migration applied") {
		t.Errorf("no migration logged:\n%s", logs)
	}
	if _, ok := a.Limiter.(*ratelimit.Fallback); !ok {
		t.Errorf("limiter %T, want the Redis fallback", a.Limiter)
	}
	if a.Mail == nil || a.Accounts.Mail == nil {
		t.Error("mail is configured but the service has no sender")
	}
	for _, p := range []string{oidc.Google, oidc.Apple} {
		if a.Accounts.Providers[p] == nil {
			t.Errorf("no %s provider", p)
		}
	}
}

// Shutdown of an App that never ran closes its listeners, and it may not run afterwards.
func TestShutdownBeforeRunReleasesTheListeners(t *testing.T) {
	a, err := app.New(context.Background(), fileConfig(t), app.Deps{LogOutput: &testenv.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(a.URL(), "http://")
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the listener still accepts connections")
	}
	if err := a.Run(context.Background()); err == nil {
		t.Fatal("Run after Shutdown ran")
	}
}

// A New that fails leaves nothing open: the public listener it had opened is released.
func TestANewThatFailsLeavesNothingOpen(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := fileConfig(t)
	cfg.Addr, cfg.InternalAddr = testenv.FreeAddr(t), taken.Addr().String()
	if _, err := app.New(context.Background(), cfg, app.Deps{LogOutput: &testenv.Buffer{}}); err == nil || !strings.Contains(err.Error(), "FLUXAUTH_INTERNAL_ADDR") {
		t.Fatalf("New: %v, want the internal address refused", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatalf("the public address is still held: %v", err)
	}
	ln.Close()
}

// heldStore holds UserByEmail until released, so a request is in flight when shutdown begins.
type heldStore struct {
	fluxauth.Backend
	arrived, release chan struct{}
}

func (s heldStore) UserByEmail(ctx context.Context, email string) (*fluxauth.User, error) {
	if email == "held@example.com" {
		close(s.arrived)
		<-s.release
	}
	return s.Backend.UserByEmail(ctx, email)
}

// The graceful stop drains before it closes: a request in flight when it begins is answered, while
// new connections are refused, and the security event it records is written before Run returns.
func TestShutdownAnswersTheRequestsInFlightAndWritesTheirEvents(t *testing.T) {
	store := heldStore{Backend: sqlitetest.MustOpenDB(t), arrived: make(chan struct{}), release: make(chan struct{})}
	a, err := app.New(context.Background(), testserver.Config(t), app.Deps{Store: store, LogOutput: &testenv.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- a.Run(context.Background()) }()
	answered := make(chan int, 1)
	go func() {
		res, err := http.Post(a.URL()+"/api/auth/login", "application/json", strings.NewReader(`{"email":"held@example.com","password":"wrong password"}`))
		if err != nil {
			answered <- 0
			return
		}
		res.Body.Close()
		answered <- res.StatusCode
	}()
	<-store.arrived
	stopped := make(chan error, 1)
	go func() { stopped <- a.Shutdown() }()
	// New connections are refused once the listener is closed, while the request still waits.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", strings.TrimPrefix(a.URL(), "http://"))
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts connections during the shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("the shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(store.release)
	if status := <-answered; status != http.StatusUnauthorized {
		t.Fatalf("the request in flight: %d, want its 401", status)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	evs, err := store.ListEvents(context.Background(), fluxauth.EventFilter{Type: fluxauth.EventFailedLogin, Limit: 10})
	if err != nil || len(evs) != 1 {
		t.Fatalf("failed_login events after the shutdown: %d (%v), want the request's one", len(evs), err)
	}
}

// A goroutine of the service that stops on its own stops the service with an error that names it.
func TestAFailedGoroutineStopsRunWithItsName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), testserver.Config(t), app.Deps{
		Store: sqlitetest.MustOpenDB(t), LogOutput: &testenv.Buffer{}, Listener: brokenListener{ln},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "public listener stopped unexpectedly") {
		t.Fatalf("Run: %v, want the public listener named", err)
	}
}

type brokenListener struct{ net.Listener }

func (brokenListener) Accept() (net.Conn, error) {
	return nil, errors.New("accept: too many open files")
}
