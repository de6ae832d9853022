package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
)

// binary is fluxauth built once for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fluxauth-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "fluxauth")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build fluxauth: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func envFunc(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestConfigReportsEveryProblemAtOnceNamingItsVariable(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve"}, envFunc(
		"FLUXAUTH_ADDR", "nonsense",
		"FLUXAUTH_DATABASE_URL", "mysql://x",
		"FLUXAUTH_LOG_LEVEL", "loud",
		"FLUXAUTH_ACCESS_TTL", "forever",
		"FLUXAUTH_JWT_ALG", "HS256",
		"FLUXAUTH_JWT_SECRET", "too-short-secret",
	), io.Discard, &stderr)
	if code == 0 {
		t.Fatal("bad configuration was accepted")
	}
	for _, name := range []string{"FLUXAUTH_ADDR", "FLUXAUTH_DATABASE_URL", "FLUXAUTH_LOG_LEVEL", "FLUXAUTH_ACCESS_TTL", "FLUXAUTH_JWT_SECRET"} {
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("error does not name %s:\n%s", name, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "too-short-secret") {
		t.Error("the secret was printed")
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	cfg, _, err := parseConfig("serve", []string{"--log-level", "debug"}, envFunc("FLUXAUTH_LOG_LEVEL", "error"), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "debug" {
		t.Fatalf("log level %q", cfg.LogLevel)
	}
}

func TestDefaultsNeedNoConfiguration(t *testing.T) {
	cfg, _, err := parseConfig("serve", nil, envFunc(), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8080" || cfg.DatabaseURL != "sqlite:./fluxauth.db" || cfg.SigningKeys != "fluxauth-keys.json" || cfg.Issuer != "fluxauth" {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestPostgresRequiresASharedKeyFile(t *testing.T) {
	_, _, err := parseConfig("serve", nil, envFunc("FLUXAUTH_DATABASE_URL", "postgres://localhost/x"), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "FLUXAUTH_SIGNING_KEYS") {
		t.Fatalf("err %v", err)
	}
}

func TestBadConfigurationExitsWithinASecond(t *testing.T) {
	start := time.Now()
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(os.Environ(), "FLUXAUTH_DATABASE_URL=oracle://nope")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("exited 0")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %s", d)
	}
	if !strings.Contains(string(out), "FLUXAUTH_DATABASE_URL") {
		t.Fatalf("output: %s", out)
	}
}

// startServe runs "fluxauth serve" in dir and waits until /healthz answers. Its log may be read
// while it runs.
func startServe(tb testing.TB, dir string, env ...string) (*exec.Cmd, string, *testenv.Buffer) {
	tb.Helper()
	addr := testenv.FreeAddr(tb)
	listen := addr
	for _, kv := range env { // a test's own FLUXAUTH_ADDR wins; it is reached through loopback
		if v, ok := strings.CutPrefix(kv, "FLUXAUTH_ADDR="); ok {
			listen, addr = v, "127.0.0.1:"+v[strings.LastIndexByte(v, ':')+1:]
		}
	}
	cmd := exec.Command(binary, "serve")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"FLUXAUTH_ADDR=" + listen}, env...)...)
	logs := &testenv.Buffer{}
	cmd.Stderr = logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	for time.Since(start) < 5*time.Second {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return cmd, "http://" + addr, logs
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("serve did not answer /healthz within 5 s:\n%s", logs.String())
	return nil, "", nil
}

func TestServeStartsWithNoConfigurationAndShutsDownGracefully(t *testing.T) {
	dir := t.TempDir()
	cmd, url, logs := startServe(t, dir)
	for _, f := range []string{"fluxauth.db", "fluxauth-keys.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s not created: %v", f, err)
		}
	}
	// An in-flight request: its body arrives after SIGTERM, and it must still be answered.
	pr, pw := io.Pipe()
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", url+"/api/auth/login", pr)
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	pw.Write([]byte(`{"email":"nobody@example.com",`))
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	pw.Write([]byte(`"password":"whatever pass"}`))
	pw.Close()
	res := <-done
	if res == nil || res.StatusCode != 401 {
		t.Fatalf("in-flight request not answered: %+v\n%s", res, logs)
	}
	res.Body.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v:\n%s", err, logs)
	}
	if strings.Contains(logs.String(), "whatever pass") {
		t.Fatal("a password reached the log")
	}
}

// serve's own wiring of readiness to the rate limiter's Redis fallback: with Redis unreachable,
// requests are still answered (limited per instance) and /readyz says "degraded" with 200.
func TestServeReportsUnreachableRedisAsDegradedButStaysReady(t *testing.T) {
	_, url, logs := startServe(t, t.TempDir(), "FLUXAUTH_REDIS_URL=redis://"+testenv.FreeAddr(t)+"/0")
	res, err := http.Post(url+"/api/auth/login", "application/json",
		strings.NewReader(`{"email":"nobody@example.com","password":"wrong password"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("login with Redis unreachable: %d, want 401\n%s", res.StatusCode, logs)
	}
	res, err = http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Status   string   `json:"status"`
		Degraded []string `json:"degraded"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || body.Status != "degraded" || len(body.Degraded) != 1 || body.Degraded[0] != "redis" {
		t.Fatalf("/readyz with Redis unreachable: %d %+v, want 200 degraded [redis]", res.StatusCode, body)
	}
}

// /metrics and pprof are served on the internal listener only; FLUXAUTH_DEBUG_ADDR still opens it
// for one release, with a warning.
func TestServeServesMetricsAndProfilesOnTheInternalListenerOnly(t *testing.T) {
	for _, variable := range []string{"FLUXAUTH_INTERNAL_ADDR", "FLUXAUTH_DEBUG_ADDR"} {
		t.Run(variable, func(t *testing.T) {
			internal := "http://" + testenv.FreeAddr(t)
			cmd, url, logs := startServe(t, t.TempDir(), variable+"="+strings.TrimPrefix(internal, "http://"))
			get := func(u string) (int, string) {
				t.Helper()
				res, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(b)
			}
			if code, body := get(url + "/metrics"); code != http.StatusNotFound || strings.Contains(body, "fluxauth_") {
				t.Fatalf("the public listener serves /metrics: %d", code)
			}
			code, body := get(internal + "/metrics")
			if code != http.StatusOK {
				t.Fatalf("internal /metrics: %d", code)
			}
			for _, want := range []string{`fluxauth_http_requests_total{route="GET /healthz",status="200"}`, "fluxauth_audit_events_set_aside_total 0"} {
				if !strings.Contains(body, want) {
					t.Errorf("internal /metrics lacks %s", want)
				}
			}
			if code, _ := get(internal + "/debug/pprof/"); code != http.StatusOK {
				t.Fatalf("internal /debug/pprof/: %d", code)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("serve exited with %v:\n%s", err, logs)
			}
			warned := strings.Contains(logs.String(), "FLUXAUTH_DEBUG_ADDR is deprecated")
			if warned != (variable == "FLUXAUTH_DEBUG_ADDR") {
				t.Fatalf("deprecation warning: %v, want %v:\n%s", warned, !warned, logs)
			}
		})
	}
}

func TestServeAnswersCORSForTheConfiguredOrigins(t *testing.T) {
	_, url, _ := startServe(t, t.TempDir(), "FLUXAUTH_CORS_ORIGINS=https://app.example.com")
	req, _ := http.NewRequest("OPTIONS", url+"/api/auth/refresh", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("preflight: %d, Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
}

func runCLI(tb testing.TB, dir string, env []string, args ...string) (string, error) {
	tb.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestMigrateStatusListsAppliedMigrations(t *testing.T) {
	dialects := map[string]func(t *testing.T) []string{
		"sqlite": func(t *testing.T) []string { return nil },
		"postgres": func(t *testing.T) []string {
			return []string{"FLUXAUTH_DATABASE_URL=" + postgrestest.CreateDatabase(t), "FLUXAUTH_SIGNING_KEYS=" + filepath.Join(t.TempDir(), "keys.json")}
		},
	}
	for name, envOf := range dialects {
		t.Run(name, func(t *testing.T) {
			dir, env := t.TempDir(), envOf(t)
			out, err := runCLI(t, dir, env, "migrate", "status")
			if err != nil || !strings.Contains(out, "001") || !strings.Contains(out, "pending") {
				t.Fatalf("status before: %v\n%s", err, out)
			}
			if out, err := runCLI(t, dir, env, "migrate", "up"); err != nil || !strings.Contains(out, "001_create_refresh_tokens") {
				t.Fatalf("up: %v\n%s", err, out)
			}
			out, err = runCLI(t, dir, env, "migrate", "status")
			if err != nil || strings.Contains(out, "pending") || !strings.Contains(out, "002_create_security_events") || !strings.Contains(out, "applied") {
				t.Fatalf("status after: %v\n%s", err, out)
			}
			if out, err := runCLI(t, dir, env, "migrate", "down"); err != nil || !strings.Contains(out, "rolled back") {
				t.Fatalf("down: %v\n%s", err, out)
			}
			if out, err := runCLI(t, dir, env, "migrate", "status"); err != nil || !strings.Contains(out, "pending") {
				t.Fatalf("status after down: %v\n%s", err, out)
			}
		})
	}
}

func TestUsersSetType(t *testing.T) {
	dir := t.TempDir()
	cmd, url, _ := startServe(t, dir)
	res, err := http.Post(url+"/api/auth/signup", "application/json",
		strings.NewReader(`{"email":"boss@example.com","password":"correct horse battery","name":"Boss"}`))
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("signup: %v %v", err, res)
	}
	res.Body.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	out, err := runCLI(t, dir, nil, "users", "set-type", "BOSS@example.com", "admin")
	if err != nil || !strings.Contains(out, "admin") {
		t.Fatalf("set-type: %v %s", err, out)
	}
	out, err = runCLI(t, dir, nil, "users", "set-type", "ghost@example.com", "admin")
	if err == nil || !strings.Contains(out, "no user with email ghost@example.com") {
		t.Fatalf("unknown email: %v %s", err, out)
	}
	// A type that is neither admin nor a signup type is refused, naming the valid ones, and stored
	// nowhere.
	out, err = runCLI(t, dir, nil, "users", "set-type", "boss@example.com", "admn")
	if err == nil || !strings.Contains(out, `"admn"`) || !strings.Contains(out, "admin, client, designer") {
		t.Fatalf("set-type admn: %v %s, want a refusal listing admin and the signup types", err, out)
	}
	if out, err := runCLI(t, dir, nil, "users", "set-type", "boss@example.com", "designer"); err != nil {
		t.Fatalf("set-type designer (a signup type): %v %s", err, out)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "fluxauth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var userType string
	if err := db.QueryRow(`SELECT user_type FROM users WHERE email_key = 'boss@example.com'`).Scan(&userType); err != nil || userType != "designer" {
		t.Fatalf("stored type %q, %v; want designer", userType, err)
	}
	// Each change is an event naming who made it, from what, to what.
	rows, err := db.Query(`SELECT metadata FROM security_events WHERE event_type = 'user_type_changed' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var changes []map[string]string
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("metadata %s: %v", raw, err)
		}
		changes = append(changes, m)
	}
	if len(changes) != 2 || changes[0]["from"] != "client" || changes[0]["to"] != "admin" || changes[1]["to"] != "designer" ||
		!strings.HasPrefix(changes[0]["by"], "cli") {
		t.Fatalf("user_type_changed events %v; want client->admin then admin->designer, each by cli:<operator>", changes)
	}
}

// Only serve and migrate up change the schema: on a schema older than the binary, cleanup (even a
// dry run) and users set-type fail naming "fluxauth migrate up", and migrate nothing.
func TestSubcommandsOtherThanServeAndMigrateUpDoNotMigrate(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCLI(t, dir, nil, "migrate", "up"); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, out)
	}
	if out, err := runCLI(t, dir, nil, "migrate", "down"); err != nil || !strings.Contains(out, "rolled back") {
		t.Fatalf("migrate down: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"cleanup", "--dry-run"}, {"cleanup"}, {"users", "set-type", "boss@example.com", "admin"}} {
		out, err := runCLI(t, dir, nil, args...)
		if err == nil || !strings.Contains(out, "fluxauth migrate up") {
			t.Errorf("%v on an older schema: %v\n%s; want a failure naming fluxauth migrate up", args, err, out)
		}
		if out, err := runCLI(t, dir, nil, "migrate", "status"); err != nil || strings.Count(out, "pending") != 1 {
			t.Fatalf("after %v: %v\n%s; want the one rolled-back migration still pending", args, err, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, t.TempDir(), nil, "version")
	if err != nil || !strings.HasPrefix(out, "fluxauth ") {
		t.Fatalf("%v %s", err, out)
	}
}

func TestCleanupCommand(t *testing.T) {
	dir := t.TempDir()
	cmd, url, _ := startServe(t, dir)
	res, err := http.Post(url+"/api/auth/signup", "application/json",
		strings.NewReader(`{"email":"clean@example.com","password":"correct horse battery","name":"C"}`))
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("signup: %v %v", err, res)
	}
	res.Body.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	// With zero token retention nothing live may go; the one session is live.
	out, err := runCLI(t, dir, []string{"FLUXAUTH_TOKEN_RETENTION=0s"}, "cleanup", "--dry-run")
	if err != nil || !strings.Contains(out, "refresh_tokens: would delete 0") || !strings.Contains(out, "security_events: would delete 0") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	out, err = runCLI(t, dir, []string{"FLUXAUTH_EVENT_RETENTION=1h"}, "cleanup")
	if err != nil || !strings.Contains(out, "refresh_tokens: deleted 0") {
		t.Fatalf("cleanup: %v\n%s", err, out)
	}
}

// signupOver signs a user up against a running server and returns the access token.
func signupOver(tb testing.TB, url, email string) string {
	tb.Helper()
	return accessOver(tb, url+"/api/auth/signup", `{"email":"`+email+`","password":"correct horse battery","name":"K"}`, http.StatusCreated)
}

// accessOver posts body to url and returns the access token of its answer, which must be status.
func accessOver(tb testing.TB, url, body string, status int) string {
	tb.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatalf("%s: %v", url, err)
	}
	defer res.Body.Close()
	var ar struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.NewDecoder(res.Body).Decode(&ar); err != nil || res.StatusCode != status {
		tb.Fatalf("%s: %d %v", url, res.StatusCode, err)
	}
	return ar.AccessToken
}

func TestAccessTokensSurviveARestartOnAnotherAddressWithTheDefaultIssuer(t *testing.T) {
	dir := t.TempDir()
	cmd, url, logs := startServe(t, dir)
	access := signupOver(t, url, "restart@example.com")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if strings.Contains(logs.String(), "FLUXAUTH_ISSUER is unset") {
		t.Fatalf("a loopback listener was warned about its issuer:\n%s", logs)
	}
	// Listening on every interface now, on another port.
	cmd, url, logs = startServe(t, dir, "FLUXAUTH_ADDR=0.0.0.0:"+strings.Split(testenv.FreeAddr(t), ":")[1])
	if me := get(t, url+"/api/auth/me", access); !strings.Contains(me, "restart@example.com") {
		t.Fatalf("the token died with the restart: %s", me)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait() // the log is written by the process until it exits
	if !strings.Contains(logs.String(), "FLUXAUTH_ISSUER is unset") {
		t.Fatalf("no warning about the default issuer on a public listener:\n%s", logs)
	}
}

func TestKeysRotateKeepsOldTokensVerifying(t *testing.T) {
	dir := t.TempDir()
	issuer := "FLUXAUTH_ISSUER=http://fluxauth.test"
	cmd, url, _ := startServe(t, dir, issuer)
	res, err := http.Post(url+"/api/auth/signup", "application/json",
		strings.NewReader(`{"email":"keys@example.com","password":"correct horse battery","name":"K"}`))
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("signup: %v %v", err, res)
	}
	var ar struct {
		AccessToken string `json:"accessToken"`
	}
	json.NewDecoder(res.Body).Decode(&ar)
	res.Body.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	out, err := runCLI(t, dir, nil, "keys", "rotate")
	if err != nil || !strings.Contains(out, "is current") {
		t.Fatalf("rotate: %v %s", err, out)
	}
	_, url, _ = startServe(t, dir, issuer)
	jwks := get(t, url+"/.well-known/jwks.json", "")
	if strings.Count(jwks, `"kid"`) != 2 {
		t.Fatalf("JWKS after rotation: %s", jwks)
	}
	if me := get(t, url+"/api/auth/me", ar.AccessToken); !strings.Contains(me, "keys@example.com") {
		t.Fatalf("token signed with the old key: %s", me)
	}
}

func TestKeysRotateKeepsARetiredKeyForTheAccessTTLPlusLeeway(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.json")
	env := []string{"FLUXAUTH_SIGNING_KEYS=" + keys}
	if out, err := runCLI(t, t.TempDir(), env, "keys", "rotate"); err != nil {
		t.Fatalf("first rotate: %v %s", err, out)
	}
	// Backdate the retired key to 20 minutes ago: past the default 15m TTL plus 30s leeway, within 30m.
	var kf map[string]any
	data, err := os.ReadFile(keys)
	if err != nil || json.Unmarshal(data, &kf) != nil {
		t.Fatalf("read key file: %v", err)
	}
	var retired string
	for _, k := range kf["keys"].([]any) {
		if k := k.(map[string]any); k["retiredAt"] != nil {
			retired = k["kid"].(string)
			k["retiredAt"] = time.Now().UTC().Add(-20 * time.Minute).Format(time.RFC3339)
		}
	}
	if retired == "" {
		t.Fatalf("no retired key after a rotation: %s", data)
	}
	if enc, _ := kf["encryptionKeys"].([]any); len(enc) != 2 {
		t.Fatalf("%d encryption keys after a creation and a rotation; want 2", len(enc))
	}
	if data, err = json.Marshal(kf); err != nil || os.WriteFile(keys, data, 0o600) != nil {
		t.Fatalf("write key file: %v", err)
	}

	out, err := runCLI(t, t.TempDir(), append(env, "FLUXAUTH_ACCESS_TTL=30m"), "keys", "rotate")
	if err != nil || !strings.Contains(out, retired) {
		t.Fatalf("with a 30m TTL the key retired 20 minutes ago was dropped: %v %s", err, out)
	}
	out, err = runCLI(t, t.TempDir(), env, "keys", "rotate")
	if err != nil || strings.Contains(out, retired) {
		t.Fatalf("with the default 15m TTL the key retired 20 minutes ago was kept: %v %s", err, out)
	}
	if data, err = os.ReadFile(keys); err != nil || json.Unmarshal(data, &kf) != nil {
		t.Fatalf("read key file: %v", err)
	}
	if enc, _ := kf["encryptionKeys"].([]any); len(enc) != 4 || !strings.Contains(out, "new encryption key") {
		t.Fatalf("%d encryption keys after three rotations; want 4, none pruned: %s", len(enc), out)
	}
}

func get(tb testing.TB, url, bearer string) string {
	tb.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
