package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
)

// newTestLifecycle is a lifecycle serving an empty handler on loopback, whose shutdown closes the
// server; shutdownRan reports whether it did.
func newTestLifecycle(t *testing.T, ctx context.Context) (lc *lifecycle, addr string, logs *testenv.Buffer, shutdownRan *atomic.Bool) {
	t.Helper()
	logs = &testenv.Buffer{}
	lc = newLifecycle(ctx, slog.New(slog.NewTextHandler(logs, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	lc.serve("public listener", srv, ln)
	shutdownRan = &atomic.Bool{}
	lc.onShutdown(func() error {
		shutdownRan.Store(true)
		return srv.Shutdown(context.Background())
	})
	return lc, ln.Addr().String(), logs, shutdownRan
}

func waitWithin(t *testing.T, lc *lifecycle, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- lc.wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("the lifecycle's goroutines did not all return within %v", d)
		return nil
	}
}

func TestAGoroutineThatStopsWhileServingShutsServeDownWithAClearError(t *testing.T) {
	lc, addr, logs, shutdownRan := newTestLifecycle(t, context.Background())
	lc.loop("daily cleanup", func(ctx context.Context) error { return nil }) // returns at once
	err := waitWithin(t, lc, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "daily cleanup stopped unexpectedly") {
		t.Fatalf("wait: %v, want the cleanup named as stopped unexpectedly", err)
	}
	if !shutdownRan.Load() {
		t.Fatal("the other goroutines were not shut down")
	}
	if !strings.Contains(logs.String(), "fluxauth: daily cleanup stopped unexpectedly; shutting down") {
		t.Fatalf("no log line names the goroutine that stopped:\n%s", logs)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the listener still accepts connections after the lifecycle stopped")
	}
}

// failingListener's Accept fails as a broken socket would.
type failingListener struct{ net.Listener }

func (failingListener) Accept() (net.Conn, error) {
	return nil, errors.New("accept: too many open files")
}

func TestAListenersServeErrorIsNotDropped(t *testing.T) {
	lc, _, _, shutdownRan := newTestLifecycle(t, context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lc.serve("internal listener", &http.Server{Handler: http.NotFoundHandler()}, failingListener{ln})
	err = waitWithin(t, lc, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "internal listener stopped unexpectedly") || !strings.Contains(err.Error(), "too many open files") {
		t.Fatalf("wait: %v, want the internal listener's error", err)
	}
	if !shutdownRan.Load() {
		t.Fatal("a failed listener did not shut the rest down")
	}
}

func TestShutdownWaitsForEveryGoroutineAndIsNotAFailure(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	lc, _, logs, _ := newTestLifecycle(t, ctx)
	release := make(chan struct{})
	var finished atomic.Bool
	lc.loop("signing-key reload", func(ctx context.Context) error {
		<-ctx.Done()
		<-release // still finishing its last round
		finished.Store(true)
		return ctx.Err()
	})
	stop() // SIGTERM
	done := make(chan error, 1)
	go func() { done <- lc.wait() }()
	select {
	case err := <-done:
		t.Fatalf("wait returned (%v) before a goroutine had", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("a requested shutdown: %v, want nil", err)
	}
	if !finished.Load() {
		t.Fatal("wait returned before the goroutine did")
	}
	if strings.Contains(logs.String(), "unexpectedly") {
		t.Fatalf("a requested shutdown was logged as a failure:\n%s", logs)
	}
}
