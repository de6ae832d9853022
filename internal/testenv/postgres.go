package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// PostgresServer is a private PostgreSQL cluster for tests that stop, restart or break the
// database, which must never be done to the machine's shared one: initdb in a temporary directory,
// a server on a free loopback port, trust authentication for the postgres user. PostgreSQL refuses
// to run as root, so as root every command runs as the postgres user, who owns the directory.
type PostgresServer struct {
	tb      testing.TB
	bin     string // the directory of initdb and pg_ctl
	dir     string // holds data/, the log and the socket
	port    int
	runAs   string // "postgres" when the test runs as root
	running bool
}

// StartPostgres creates and starts a private cluster and removes it when the test ends. Without
// PostgreSQL's server binaries (initdb, pg_ctl) the test is skipped, or fails when
// FLUXAUTH_TEST_REQUIRE_SERVICES=1.
func StartPostgres(tb testing.TB) *PostgresServer {
	tb.Helper()
	bin, err := postgresBin()
	if err != nil {
		if Required() {
			tb.Fatalf("PostgreSQL server binaries not found but FLUXAUTH_TEST_REQUIRE_SERVICES=1: %v", err)
		}
		tb.Skipf("PostgreSQL server binaries not found: %v", err)
	}
	p := &PostgresServer{tb: tb, bin: bin, port: freePort(tb)}
	// Not tb.TempDir: its parent is private to the test's user, and the postgres user must reach it.
	if p.dir, err = os.MkdirTemp("", "fluxauth-pg-"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.stopNow()
		os.RemoveAll(p.dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("testenv: PostgreSQL will not run as root and there is no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(p.dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
		p.runAs = "postgres"
	}
	// No fsync: the cluster lives as long as the test, and is only ever stopped cleanly or killed
	// as a process, never with the machine.
	p.run("initdb", "-D", p.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	conf := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"fsync = off\nfull_page_writes = off\nmax_connections = 100\nshared_buffers = 32MB\n", p.port, p.dir)
	f, err := os.OpenFile(filepath.Join(p.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	p.Start()
	return p
}

// postgresBin finds the directory holding initdb and pg_ctl: on PATH, else the newest of Debian's
// /usr/lib/postgresql/*/bin.
func postgresBin() (string, error) {
	if path, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(path), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("neither pg_ctl and initdb on PATH nor /usr/lib/postgresql/*/bin/initdb")
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func freePort(tb testing.TB) int {
	tb.Helper()
	addr, err := net.ResolveTCPAddr("tcp", FreeAddr(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return addr.Port
}

func (p *PostgresServer) data() string { return filepath.Join(p.dir, "data") }
func (p *PostgresServer) log() string  { return filepath.Join(p.dir, "postgres.log") }

// Addr is the server's host:port.
func (p *PostgresServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// URL is a postgres:// URL of the cluster's postgres database.
func (p *PostgresServer) URL() string {
	return "postgres://postgres@" + p.Addr() + "/postgres?sslmode=disable"
}

// Start starts the server and returns once it accepts connections.
func (p *PostgresServer) Start() {
	p.tb.Helper()
	p.run("pg_ctl", "start", "-w", "-t", "60", "-D", p.data(), "-l", p.log())
	p.running = true
}

// Stop shuts the server down as "pg_ctl stop -m fast" does: sessions are ended, and clients see
// their connections closed.
func (p *PostgresServer) Stop() {
	p.tb.Helper()
	p.run("pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", p.data())
	p.running = false
}

// Restart is "pg_ctl restart -m fast", as an operator or a failover would: it returns once the
// server accepts connections again.
func (p *PostgresServer) Restart() {
	p.tb.Helper()
	p.run("pg_ctl", "restart", "-w", "-t", "60", "-m", "fast", "-D", p.data(), "-l", p.log())
	p.running = true
}

// stopNow ends a running server at the end of the test, without failing it.
func (p *PostgresServer) stopNow() {
	if p.running {
		p.running = false
		_ = p.command("pg_ctl", "stop", "-w", "-t", "60", "-m", "immediate", "-D", p.data()).Run()
	}
}

func (p *PostgresServer) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, name)
	if p.runAs != "" {
		return exec.Command("runuser", append([]string{"-u", p.runAs, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (p *PostgresServer) run(name string, args ...string) {
	p.tb.Helper()
	cmd := p.command(name, args...)
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(p.log())
		p.tb.Fatalf("testenv: %s %s: %v\n%s\nserver log:\n%s", name, strings.Join(args, " "), err, out, log)
	}
}
