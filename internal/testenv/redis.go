package testenv

import (
	"bufio"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// RedisServer is a private redis-server for tests that stop Redis or make it lose its data, which
// must never be done to the shared one. It keeps nothing on disk, like the Redis fluxauth assumes:
// started again, it comes back empty.
type RedisServer struct {
	tb      testing.TB
	port    int
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	running bool
}

// StartRedis starts redis-server on a free loopback port and stops it when the test ends. Without
// the redis-server binary the test is skipped, or fails when FLUXAUTH_TEST_REQUIRE_SERVICES=1.
func StartRedis(tb testing.TB) *RedisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if Required() {
			tb.Fatalf("redis-server is not installed but FLUXAUTH_TEST_REQUIRE_SERVICES=1: %v", err)
		}
		tb.Skipf("redis-server is not installed: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &RedisServer{tb: tb, port: port, dir: tb.TempDir()}
	r.Start()
	tb.Cleanup(r.Stop)
	return r
}

// Addr is the server's host:port.
func (r *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// URL is a redis:// URL of the server's database 0.
func (r *RedisServer) URL() string { return "redis://" + r.Addr() + "/0" }

// Start runs the server (again, after Stop: empty) and returns once it accepts connections.
func (r *RedisServer) Start() {
	r.tb.Helper()
	if r.running {
		r.tb.Fatal("testenv: redis-server is already running")
	}
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--loglevel", "notice")
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.tb.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server: %v", err)
	}
	// redis-server says when it accepts connections; its log is read to the end either way, so
	// the pipe never fills and blocks it.
	ready := make(chan struct{})
	exited := make(chan struct{})
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if !seen {
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "Ready to accept connections") {
					seen = true
					close(ready)
				}
			}
		}
		cmd.Wait()
		close(exited)
	}()
	select {
	case <-ready:
	case <-exited:
		r.tb.Fatalf("redis-server on port %d exited before accepting connections:\n%s", r.port, log.String())
	}
	r.cmd, r.exited, r.running = cmd, exited, true
}

// Stop kills the server, as a crash would, and waits for it to exit; what it held is gone.
func (r *RedisServer) Stop() {
	if !r.running {
		return
	}
	r.running = false
	_ = r.cmd.Process.Signal(syscall.SIGCONT) // a frozen server is let run, so it dies like any other
	if err := r.cmd.Process.Kill(); err != nil {
		r.tb.Errorf("testenv: stop redis-server: %v", err)
	}
	<-r.exited
}

// Freeze stops the process (SIGSTOP) without closing its socket: connections stay open and the
// kernel still accepts new ones, but nothing answers, as with a partitioned or wedged Redis.
func (r *RedisServer) Freeze() { r.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT); it answers what it was sent meanwhile.
func (r *RedisServer) Thaw() { r.signal(syscall.SIGCONT) }

func (r *RedisServer) signal(sig syscall.Signal) {
	r.tb.Helper()
	if !r.running {
		r.tb.Fatal("testenv: redis-server is not running")
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.tb.Fatalf("testenv: signal redis-server: %v", err)
	}
}
