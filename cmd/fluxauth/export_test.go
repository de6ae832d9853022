package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// An export writes every user once, across several pages, with the fields the legacy server's users
// have: hashes as stored, the verified flag, the creation time and the Google and Apple subjects.
func TestUsersExportWritesEveryUserWithItsIdentities(t *testing.T) {
	for name, open := range map[string]func(testing.TB) fluxauth.Backend{
		"sqlite":   func(tb testing.TB) fluxauth.Backend { return sqlitetest.MustOpenDB(tb) },
		"postgres": func(tb testing.TB) fluxauth.Backend { return postgrestest.MustOpenDB(tb) },
	} {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			created := time.Date(2019, 5, 4, 3, 2, 1, 0, time.UTC)
			const n = 2*exportPage + 7 // three pages
			want := map[string]userLine{}
			for i := range n {
				id := fmt.Sprint(i + 1) // "1" … "2007": the legacy server's numeric IDs, which sort as text
				if i%3 == 0 {
					id = fmt.Sprintf("usr_%04x", i)
				}
				u := &fluxauth.User{ID: id, Email: fmt.Sprintf("user-%d@example.com", i), Name: fmt.Sprintf("User %d", i), UserType: "client",
					PasswordHash: "$2b$10$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01", CreatedAt: created.Add(time.Duration(i) * time.Second), UpdatedAt: created}
				line := userLine{ID: id, Email: u.Email, Name: u.Name, UserType: "client", PasswordHash: u.PasswordHash, CreatedAt: u.CreatedAt}
				switch i {
				case 5: // a provider-only account, verified, linked to both
					u.PasswordHash, line.PasswordHash = "", ""
					u.EmailVerifiedAt, line.EmailVerified = created, true
					line.Google, line.Apple = "g-5", "a-5"
				case 6:
					u.UserType, line.UserType = "admin", "admin"
				}
				if err := db.CreateUser(ctx, u); err != nil {
					t.Fatal(err)
				}
				want[id] = line
			}
			for _, id := range []*fluxauth.Identity{{Provider: "google", Subject: "g-5", UserID: "6"}, {Provider: "apple", Subject: "a-5", UserID: "6"},
				{Provider: "google", Subject: "g-7", UserID: "8"}, {Provider: "google", Subject: "g-7b", UserID: "8"}} {
				id.CreatedAt = created
				if err := db.CreateIdentity(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			l := want["8"]
			l.Google = "g-7" // the first by subject; the second is reported
			want["8"] = l

			var buf bytes.Buffer
			got, multi, err := exportUsers(ctx, db, &buf)
			if err != nil || got != n {
				t.Fatalf("exportUsers: %d, %v; want %d users", got, err, n)
			}
			if len(multi) != 1 || multi[0] != (multiIdentity{"8", "google", 1}) {
				t.Errorf("reported %+v, want user 8's second google identity", multi)
			}
			sc := bufio.NewScanner(&buf)
			seen := map[string]bool{}
			for sc.Scan() {
				var line userLine
				dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&line); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				if seen[line.ID] {
					t.Fatalf("user %s exported twice", line.ID)
				}
				seen[line.ID] = true
				w := want[line.ID]
				line.CreatedAt, w.CreatedAt = line.CreatedAt.UTC(), w.CreatedAt.UTC()
				if line != w {
					t.Fatalf("user %s exported as %+v, want %+v", line.ID, line, w)
				}
			}
			if len(seen) != n {
				t.Fatalf("%d users exported, want %d", len(seen), n)
			}
		})
	}
}

// The command writes the file only its owner can read (it holds every password hash), says how
// many users it wrote, and leaves a users_exported event.
func TestUsersExportCommand(t *testing.T) {
	dir := t.TempDir()
	cmd, url, _ := startServe(t, dir)
	signupOver(t, url, "exported@example.com")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	file := filepath.Join(dir, "users.jsonl")
	out, err := runCLI(t, dir, nil, "users", "export", "--output", file)
	if err != nil || !strings.Contains(out, "exported 1 users") {
		t.Fatalf("export: %v %s", err, out)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v, mode %v; want 0600", err, st.Mode())
	}
	body, _ := os.ReadFile(file)
	var line userLine
	if err := json.Unmarshal(body, &line); err != nil || line.Email != "exported@example.com" || !strings.HasPrefix(line.PasswordHash, "$argon2id$") {
		t.Fatalf("exported %s: %v", body, err)
	}
	if out, err := runCLI(t, dir, nil, "users", "export"); err != nil || !strings.Contains(out, `"email":"exported@example.com"`) {
		t.Fatalf("export to stdout: %v %s", err, out)
	}
	// The event, read back through the API as an admin would: make one and look.
	if out, err := runCLI(t, dir, nil, "users", "set-type", "exported@example.com", "admin"); err != nil {
		t.Fatalf("set-type: %v %s", err, out)
	}
	cmd, url, _ = startServe(t, dir)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	access := loginOver(t, url, "exported@example.com")
	events := get(t, url+"/api/admin/security/events?type=users_exported", access)
	if strings.Count(events, `"eventType":"users_exported"`) != 2 {
		t.Fatalf("users_exported events: %s", events)
	}
}

func loginOver(tb testing.TB, url, email string) string {
	tb.Helper()
	return accessOver(tb, url+"/api/auth/login", `{"email":"`+email+`","password":"correct horse battery"}`, http.StatusOK)
}
