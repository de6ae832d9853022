package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// onImportStores runs fn against a fresh database of each store.
func onImportStores(t *testing.T, fn func(t *testing.T, db fluxauth.Backend)) {
	for _, s := range []struct {
		name string
		open func(testing.TB) fluxauth.Backend
	}{
		{"sqlite", func(tb testing.TB) fluxauth.Backend { return sqlitetest.MustOpenDB(tb) }},
		{"postgres", func(tb testing.TB) fluxauth.Backend { return postgrestest.MustOpenDB(tb) }},
	} {
		t.Run(s.name, func(t *testing.T) { fn(t, s.open(t)) })
	}
}

// newTestImporter is the importer of `users import` on db, reporting into the returned buffer.
func newTestImporter(t testing.TB, db fluxauth.Backend, opt fluxauth.ImportOptions) (*importer, *bytes.Buffer) {
	t.Helper()
	var report bytes.Buffer
	opt.By = "cli:test"
	im := &importer{db: db, opt: opt, userTypes: []string{fluxauth.UserTypeAdmin, fluxauth.UserTypeClient, "designer"},
		now: time.Now, report: &report}
	if opt.DryRun {
		s, err := openScratch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.close)
		im.scratch = s
	}
	return im, &report
}

// importText imports text and returns the report (summary included) and the counts.
func importText(t testing.TB, db fluxauth.Backend, text string, opt fluxauth.ImportOptions) (string, importCounts) {
	t.Helper()
	report, counts, err := tryImport(t, db, text, opt)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, report)
	}
	return report, counts
}

// tryImport is importText returning the import's error, for goroutines.
func tryImport(t testing.TB, db fluxauth.Backend, text string, opt fluxauth.ImportOptions) (string, importCounts, error) {
	im, report := newTestImporter(t, db, opt)
	err := im.run(context.Background(), strings.NewReader(text))
	im.summary()
	return report.String(), im.counts, err
}

// refusedLines maps each refused line's number to its reason, from a report.
func refusedLines(report string) map[int]string {
	out := map[int]string{}
	for _, m := range regexp.MustCompile(`(?m)^line (\d+): refused: (.*)$`).FindAllStringSubmatch(report, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		out[n] = m[2]
	}
	return out
}

func argon2PHC(variant string, m, t, p int) string {
	salt := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16))
	key := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	return fmt.Sprintf("$%s$v=19$m=%d,t=%d,p=%d$%s$%s", variant, m, t, p, salt, key)
}

func bcryptOf(t testing.TB, pw string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func jsonLine(fields map[string]any) string {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Every kind of line the import takes is created as given, and every kind it refuses is reported by
// its number and reason, without stopping the others or quoting a hash.
func TestImportTakesAndRefusesEachKindOfLine(t *testing.T) {
	onImportStores(t, func(t *testing.T, db fluxauth.Backend) {
		ctx := context.Background()
		bc := bcryptOf(t, "correct horse battery", 4)
		cost14 := "$2b$14$" + strings.Repeat("a", 53)
		created := "2020-01-02T03:04:05.123456Z"
		type want struct {
			refused string // the reason's start; "" for a line that is created
			check   func(t *testing.T, u *fluxauth.User)
		}
		lines := []struct {
			line string
			want want
		}{
			{jsonLine(map[string]any{"id": "123", "email": " Bcrypt@Example.com ", "name": " B ", "passwordHash": bc}), want{"", func(t *testing.T, u *fluxauth.User) {
				if u.Email != "Bcrypt@Example.com" || u.Name != "B" || u.PasswordHash != bc || u.UserType != "client" || u.EmailVerified() {
					t.Errorf("123: %+v", u)
				}
			}}},
			{`{"id":124,"email":"admin@example.com","userType":"admin","passwordHash":"` + cost14 + `"}`, want{"", func(t *testing.T, u *fluxauth.User) {
				if u.UserType != "admin" || u.PasswordHash != cost14 {
					t.Errorf("124: %+v", u)
				}
			}}},
			{jsonLine(map[string]any{"id": "usr_9f2", "email": "both@example.com", "passwordHash": "$2y$" + bc[4:], "emailVerified": true,
				"createdAt": created, "google": "g-1", "apple": "a-1", "userType": "designer"}), want{"", func(t *testing.T, u *fluxauth.User) {
				if !u.EmailVerified() || u.CreatedAt.Format(time.RFC3339Nano) != created || u.UserType != "designer" {
					t.Errorf("usr_9f2: %+v", u)
				}
				for _, p := range [][2]string{{"google", "g-1"}, {"apple", "a-1"}} {
					id, err := db.IdentityBySubject(ctx, p[0], p[1])
					if err != nil || id.UserID != "usr_9f2" || !id.EmailVerified || id.Email != "both@example.com" {
						t.Errorf("%s identity: %+v, %v", p[0], id, err)
					}
				}
			}}},
			{jsonLine(map[string]any{"id": "a.b-c~d:e@f", "email": "argon2id@example.com", "passwordHash": argon2PHC("argon2id", 65536, 10, 8)}), want{}},
			{jsonLine(map[string]any{"id": "i", "email": "argon2i@example.com", "passwordHash": argon2PHC("argon2i", 4096, 3, 1)}), want{}},
			{jsonLine(map[string]any{"id": "provider-only", "email": "google@example.com", "google": "g-2", "passwordHash": ""}), want{"", func(t *testing.T, u *fluxauth.User) {
				if u.PasswordHash != "" {
					t.Errorf("provider-only has a password hash")
				}
			}}},
			{"", want{refused: "-"}}, // a blank line: skipped, neither created nor refused
			{`{"email":"noid@example.com"}`, want{refused: "id is required"}},
			{`{"id":"a b","email":"space@example.com"}`, want{refused: "id must be 1 to 128"}},
			{`{"id":"` + strings.Repeat("x", 129) + `","email":"long@example.com"}`, want{refused: "id must be 1 to 128"}},
			{`{"id":true,"email":"bool@example.com"}`, want{refused: "id must be a string or a whole number"}},
			{`{"id":"e1"}`, want{refused: "email is required"}},
			{`{"id":"e2","email":"not-an-address"}`, want{refused: "email must be a valid email address"}},
			{`{"id":"n1","email":"name@example.com","name":"` + strings.Repeat("é", 101) + `"}`, want{refused: "name must be at most 100"}},
			{`{"id":"t1","email":"type@example.com","userType":"superuser"}`, want{refused: "userType must be one of"}},
			{`{"id":"h1","email":"plain@example.com","passwordHash":"hunter2"}`, want{refused: "passwordHash is refused"}},
			{`{"id":"h2","email":"cost3@example.com","passwordHash":"$2a$03$` + strings.Repeat("a", 53) + `"}`, want{refused: "passwordHash is refused: bcrypt cost 3"}},
			{`{"id":"h3","email":"cost15@example.com","passwordHash":"$2a$15$` + strings.Repeat("a", 53) + `"}`, want{refused: "passwordHash is refused: bcrypt cost 15"}},
			{jsonLine(map[string]any{"id": "h4", "email": "mem@example.com", "passwordHash": argon2PHC("argon2id", 131072, 3, 4)}), want{refused: "passwordHash is refused: argon2id memory"}},
			{jsonLine(map[string]any{"id": "h5", "email": "time@example.com", "passwordHash": argon2PHC("argon2id", 65536, 11, 4)}), want{refused: "passwordHash is refused: argon2id time"}},
			{jsonLine(map[string]any{"id": "h6", "email": "par@example.com", "passwordHash": argon2PHC("argon2i", 65536, 3, 9)}), want{refused: "passwordHash is refused: argon2i parallelism"}},
			{`{"id":"c1","email":"when@example.com","createdAt":"yesterday"}`, want{refused: "createdAt must be an RFC 3339 time"}},
			{`{"id":"c2","email":"future@example.com","createdAt":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, want{refused: "createdAt is in the future"}},
			{`{"id":"u1","email":"typo@example.com","password_hash":"` + bc + `"}`, want{refused: `not a JSON object of the import's fields: unknown field "password_hash"`}},
			{`not json`, want{refused: "not a JSON object of the import's fields: invalid JSON"}},
			{`{"id":"d1","email":"two@example.com"} {"id":"d2","email":"three@example.com"}`, want{refused: "more than one JSON value"}},
			{`{"id":"v1","email":"verified@example.com","emailVerified":"yes"}`, want{refused: "not a JSON object of the import's fields: emailVerified must be a JSON bool"}},
			{`{"id":"g1","email":"nogoogle@example.com","google":""}`, want{refused: "google must be the provider's subject"}},
			{`{"id":"g2","email":"noapple@example.com","apple":"a b"}`, want{refused: "apple must be the provider's subject"}},
			{`{"id":"l1","email":"huge@example.com","name":"` + strings.Repeat("x", maxImportLine) + `"}`, want{refused: "the line is longer than 64 KiB"}},
			{jsonLine(map[string]any{"id": "last", "email": "last@example.com"}), want{}}, // lines after the refused ones still count
		}
		var text strings.Builder
		for _, l := range lines {
			text.WriteString(l.line + "\n")
		}
		report, counts := importText(t, db, text.String(), fluxauth.ImportOptions{})
		refused := refusedLines(report)
		wantCreated, wantRefused := 0, 0
		for i, l := range lines {
			n := i + 1
			switch l.want.refused {
			case "":
				wantCreated++
				u, err := db.UserByID(ctx, idOfLine(l.line))
				if err != nil {
					t.Errorf("line %d: not created: %v", n, err)
					continue
				}
				if l.want.check != nil {
					l.want.check(t, u)
				}
			case "-":
				if _, ok := refused[n]; ok {
					t.Errorf("blank line %d reported: %s", n, refused[n])
				}
			default:
				wantRefused++
				if !strings.HasPrefix(refused[n], l.want.refused) {
					t.Errorf("line %d: reason %q, want %q", n, refused[n], l.want.refused)
				}
			}
		}
		if counts.Created != wantCreated || counts.Refused != wantRefused || counts.Lines != len(lines) {
			t.Errorf("counts %+v; want %d created, %d refused of %d lines", counts, wantCreated, wantRefused, len(lines))
		}
		for _, secret := range []string{bc[7:], strings.Repeat("a", 53), "hunter2", base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))} {
			if strings.Contains(report, secret) {
				t.Errorf("the report quotes a password hash:\n%s", report)
			}
		}
		if !strings.Contains(report, fmt.Sprintf("of %d lines: created %d, unchanged 0, updated 0, refused %d", len(lines), wantCreated, wantRefused)) {
			t.Errorf("summary missing:\n%s", report)
		}
		// Refusals come in line order, though created lines are reported when their batch is written.
		var order []int
		for _, m := range regexp.MustCompile(`(?m)^line (\d+):`).FindAllStringSubmatch(report, -1) {
			var n int
			fmt.Sscan(m[1], &n)
			order = append(order, n)
		}
		if !sort.IntsAreSorted(order) {
			t.Errorf("report out of line order: %v", order)
		}
	})
}

// idOfLine reads the id of an import line.
func idOfLine(line string) string {
	var l importLine
	json.Unmarshal([]byte(line), &l)
	id, _ := importID(l.ID)
	return id
}

// repeatsFile repeats IDs, emails and identities within itself and against an account the
// database holds (id 9, x@example.com).
const repeatsFile = `{"id":"1","email":"a@example.com","name":"A"}
{"id":"1","email":"a@example.com","name":"A"}
{"id":"1","email":"a@example.com","name":"A2"}
{"id":"2","email":"A@EXAMPLE.com"}
{"id":"3","email":"c@example.com","google":"g"}
{"id":"4","email":"d@example.com","google":"g"}
{"id":"5","email":"e@example.com"}
{"id":"10","email":"X@example.com"}
{"id":"9","email":"x@example.com","name":"Other"}
{"id":"11","email":"f@example.com","apple":"held"}
`

func seedRepeats(t *testing.T, db fluxauth.Backend) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if err := db.CreateUser(ctx, &fluxauth.User{ID: "9", Email: "x@example.com", Name: "X", UserType: "client", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateIdentity(ctx, &fluxauth.Identity{Provider: "apple", Subject: "held", UserID: "9", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// A dry run reports what the import then does, line for line, repeats within the file included,
// and writes nothing: no account, no identity, no event.
func TestImportDryRunReportsWhatTheImportDoesAndWritesNothing(t *testing.T) {
	for _, update := range []bool{false, true} {
		t.Run(fmt.Sprintf("update=%v", update), func(t *testing.T) {
			onImportStores(t, func(t *testing.T, db fluxauth.Backend) {
				ctx := context.Background()
				seedRepeats(t, db)
				dryReport, dry := importText(t, db, repeatsFile, fluxauth.ImportOptions{DryRun: true, Update: update})
				page, err := db.UsersAfter(ctx, "", 100)
				if err != nil || len(page) != 1 || page[0].User.ID != "9" || page[0].User.Name != "X" {
					t.Fatalf("after the dry run the store holds %d users (%v); want only the seeded one, unchanged", len(page), err)
				}
				if _, err := db.IdentityBySubject(ctx, "google", "g"); !errors.Is(err, fluxauth.ErrNotFound) {
					t.Fatalf("the dry run linked an identity: %v", err)
				}
				if ev, err := db.ListEvents(ctx, fluxauth.EventFilter{Limit: 10}); err != nil || len(ev) != 0 {
					t.Fatalf("the dry run recorded %d events (%v)", len(ev), err)
				}
				report, real := importText(t, db, repeatsFile, fluxauth.ImportOptions{Update: update})
				dry.Lines, real.Lines = 0, 0
				if dry != real {
					t.Errorf("dry run counted %+v, the import %+v\ndry run:\n%s\nimport:\n%s", dry, real, dryReport, report)
				}
				dr, rr := refusedLines(dryReport), refusedLines(report)
				for n, why := range rr {
					if kind(dr[n]) != kind(why) {
						t.Errorf("line %d: dry run %q, import %q", n, dr[n], why)
					}
				}
				if len(dr) != len(rr) {
					t.Errorf("dry run refused lines %v, the import %v", keys(dr), keys(rr))
				}
				wantRefused := map[int]string{4: "email", 6: "identity", 8: "email", 10: "identity"}
				if !update {
					wantRefused[3], wantRefused[9] = "exists", "exists"
				}
				for n, k := range wantRefused {
					if kind(rr[n]) != k {
						t.Errorf("line %d: %q, want a refusal of kind %s", n, rr[n], k)
					}
				}
				if !strings.Contains(rr[4], "user 1") || !strings.Contains(rr[4], "user 2") || !strings.Contains(rr[8], "user 9") || !strings.Contains(rr[8], "user 10") {
					t.Errorf("email refusals must name both accounts: %q, %q", rr[4], rr[8])
				}
			})
		})
	}
}

// kind is what a refusal is about, for comparing a dry run's wording with an import's.
func kind(reason string) string {
	switch {
	case strings.HasPrefix(reason, "email "):
		return "email"
	case strings.Contains(reason, "identity"):
		return "identity"
	case strings.Contains(reason, "exists with other data"):
		return "exists"
	case reason == "":
		return ""
	}
	return "other"
}

func keys(m map[int]string) []int {
	var k []int
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// Importing a file again changes nothing and says so; a line whose account has changed since is
// reported, and applied with --update, which ends the account's sessions when its password or email
// changes and records a change of type.
func TestImportAgainChangesNothingAndUpdateAppliesChanges(t *testing.T) {
	onImportStores(t, func(t *testing.T, db fluxauth.Backend) {
		ctx := context.Background()
		file := `{"id":"1","email":"one@example.com","name":"One","userType":"admin","passwordHash":"$2b$10$` + strings.Repeat("a", 53) + `","emailVerified":true,"createdAt":"2021-01-01T00:00:00Z","google":"g-1"}
{"id":"2","email":"two@example.com"}
`
		if _, c := importText(t, db, file, fluxauth.ImportOptions{}); c.Created != 2 || c.Refused != 0 {
			t.Fatalf("first import: %+v", c)
		}
		before, _ := db.UsersAfter(ctx, "", 10)
		report, c := importText(t, db, file, fluxauth.ImportOptions{})
		if c.Created != 0 || c.Unchanged != 2 || c.Updated != 0 || c.Refused != 0 || !strings.Contains(report, "unchanged 2") {
			t.Fatalf("second import: %+v\n%s", c, report)
		}
		after, _ := db.UsersAfter(ctx, "", 10)
		for i := range before {
			if *before[i].User != *after[i].User || len(after[i].Identities) != len(before[i].Identities) {
				t.Fatalf("re-import changed %+v into %+v", before[i].User, after[i].User)
			}
		}

		changed := strings.Replace(strings.Replace(file, `"userType":"admin"`, `"userType":"client"`, 1), `"name":"One"`, `"name":"Uno"`, 1)
		changed = strings.Replace(changed, `$2b$10$`, `$2b$11$`, 1)
		report, c = importText(t, db, changed, fluxauth.ImportOptions{})
		if c.Refused != 1 || !strings.Contains(refusedLines(report)[1], "exists with other data (name, userType, passwordHash); --update applies the line") {
			t.Fatalf("changed line without --update: %+v\n%s", c, report)
		}
		if u, _ := db.UserByID(ctx, "1"); u.Name != "One" || u.UserType != "admin" {
			t.Fatalf("without --update the account changed: %+v", u)
		}
		report, c = importText(t, db, changed, fluxauth.ImportOptions{Update: true, Now: time.Now()})
		if c.Updated != 1 || c.Unchanged != 1 || c.Refused != 0 || !strings.Contains(report, "line 1: updated user 1: name, userType, passwordHash") {
			t.Fatalf("--update: %+v\n%s", c, report)
		}
		u, _ := db.UserByID(ctx, "1")
		if u.Name != "Uno" || u.UserType != "client" || !strings.HasPrefix(u.PasswordHash, "$2b$11$") || !u.EmailVerified() {
			t.Fatalf("after --update: %+v", u)
		}
		ev, err := db.ListEvents(ctx, fluxauth.EventFilter{Type: fluxauth.EventUserTypeChanged, Limit: 10})
		if err != nil || len(ev) != 1 || ev[0].UserID != "1" || ev[0].Metadata["from"] != "admin" || ev[0].Metadata["to"] != "client" {
			t.Fatalf("user_type_changed events: %+v, %v", ev, err)
		}
		// An update that would take another account's email is refused, naming both.
		moved := `{"id":"2","email":"ONE@example.com"}` + "\n"
		report, c = importText(t, db, moved, fluxauth.ImportOptions{Update: true, Now: time.Now()})
		if c.Refused != 1 || refusedLines(report)[1] != "email ONE@example.com belongs to user 1, not to this line's user 2" {
			t.Fatalf("email move: %+v\n%s", c, report)
		}
	})
}

// Imports of one file running at once, and signups taking some of its addresses meanwhile, leave
// each account created exactly once, every line accounted for, and no account without the identity
// its line names.
func TestParallelImportsAndSignupsCreateEachAccountOnce(t *testing.T) {
	onImportStores(t, func(t *testing.T, db fluxauth.Backend) {
		ctx := context.Background()
		const n, signups = 2500, 200
		var file strings.Builder
		for i := range n {
			fmt.Fprintf(&file, `{"id":"%d","email":"user%d@example.com","google":"g-%d"}`+"\n", i, i, i)
		}
		var wg sync.WaitGroup
		counts := make([]importCounts, 3)
		reports := make([]string, 3)
		for k := range 3 {
			wg.Go(func() {
				var err error
				if reports[k], counts[k], err = tryImport(t, db, file.String(), fluxauth.ImportOptions{}); err != nil {
					t.Errorf("import %d: %v", k, err)
				}
			})
		}
		signedUp := make(chan string, signups)
		wg.Go(func() {
			now := time.Now()
			for i := range signups {
				j := 1000 + i*3
				err := db.CreateUser(ctx, &fluxauth.User{ID: fmt.Sprintf("signup-%d", j), Email: fmt.Sprintf("USER%d@example.com", j),
					UserType: "client", CreatedAt: now, UpdatedAt: now})
				if err == nil {
					signedUp <- fmt.Sprint(j)
				} else if !errors.Is(err, fluxauth.ErrConflict) {
					t.Errorf("signup: %v", err)
				}
			}
		})
		wg.Wait()
		close(signedUp)
		taken := map[string]bool{}
		for id := range signedUp {
			taken[id] = true
		}
		created := 0
		for k, c := range counts {
			created += c.Created
			if c.Created+c.Unchanged+c.Refused != n || c.Updated != 0 {
				t.Errorf("import %d: %+v does not account for %d lines", k, c, n)
			}
			for line, why := range refusedLines(reports[k]) {
				if !taken[fmt.Sprint(line-1)] || !strings.HasPrefix(why, "email ") {
					t.Errorf("import %d refused line %d: %s", k, line, why)
				}
			}
		}
		if created != n-len(taken) {
			t.Errorf("the imports created %d accounts, want %d (%d addresses signed up first)", created, n-len(taken), len(taken))
		}
		all := 0
		for after := ""; ; {
			page, err := db.UsersAfter(ctx, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				all++
				if !strings.HasPrefix(e.User.ID, "signup-") && (len(e.Identities) != 1 || e.Identities[0].Subject != "g-"+e.User.ID) {
					t.Errorf("account %s has identities %+v", e.User.ID, e.Identities)
				}
			}
			if len(page) < 1000 {
				break
			}
			after = page[len(page)-1].User.ID
		}
		if all != n {
			t.Errorf("%d accounts in the store, want %d", all, n)
		}
	})
}

// lineSource generates n import lines as they are read, so that the test holds no file.
type lineSource struct {
	n, next int
	buf     []byte
}

func (s *lineSource) Read(p []byte) (int, error) {
	for len(s.buf) < len(p) && s.next < s.n {
		s.buf = fmt.Appendf(s.buf, `{"id":"u%07d","email":"user%d@example.com","name":"User %d","passwordHash":"$2b$10$%s"}`+"\n",
			s.next, s.next, s.next, strings.Repeat("b", 53))
		s.next++
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	k := copy(p, s.buf)
	s.buf = s.buf[k:]
	return k, nil
}

// An import's memory does not grow with its input: after the first batches, the live heap at the end
// of each batch stays within a bound far below what holding the lines read would take.
func TestImportOf10000LinesHoldsBoundedMemory(t *testing.T) {
	onImportStores(t, func(t *testing.T, db fluxauth.Backend) {
		const n = 10_000
		for _, dry := range []bool{true, false} { // the dry run first: into the empty store, it would create every line
			im, report := newTestImporter(t, db, fluxauth.ImportOptions{DryRun: dry})
			var heap []uint64
			im.afterBatch = func() {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heap = append(heap, ms.HeapAlloc)
			}
			if err := im.run(context.Background(), &lineSource{n: n}); err != nil {
				t.Fatal(err)
			}
			if got := im.counts.Created; got != n || im.counts.Refused != 0 {
				t.Fatalf("dry=%v: %+v\n%s", dry, im.counts, report)
			}
			// Holding every line read (each ~150 bytes of JSON, more as an account) would add
			// well over 1.5 MB by the last batch.
			base, top := heap[1], heap[1]
			for _, h := range heap[2:] {
				top = max(top, h)
			}
			t.Logf("dry=%v: live heap after batch 2: %d bytes; most after it: %+d", dry, base, int64(top)-int64(base))
			for i, h := range heap[2:] {
				if h > base+1<<20 {
					t.Errorf("dry=%v: after batch %d the heap is %d bytes, %d over batch 2's", dry, i+3, h, h-base)
				}
			}
			if dry {
				continue
			}
			if page, err := db.UsersAfter(context.Background(), "", 1); err != nil || len(page) != 1 {
				t.Fatalf("nothing imported: %v", err)
			}
		}
	})
}

// The progress line says how far the import is, how fast it goes and, for a file, how long is left;
// it is written at most once a second of the import's clock, and only to a terminal.
func TestImportProgressLine(t *testing.T) {
	if got := progressLine(120_000, 50, 100, 5*time.Second); got != "120,000 lines · 24,000 lines/s · 0:05 left" {
		t.Errorf("progressLine = %q", got)
	}
	if got := progressLine(1_234_567, 10, 0, 10*time.Second); got != "1,234,567 lines · 123,456 lines/s" {
		t.Errorf("progressLine without a size = %q", got)
	}
	db := sqlitetest.MustOpenDB(t)
	im, _ := newTestImporter(t, db, fluxauth.ImportOptions{})
	var progress bytes.Buffer
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var elapsed atomic.Int64 // the reader reads the clock while the writer moves it
	im.now = func() time.Time { return start.Add(time.Duration(elapsed.Load())) }
	im.progress = &progress
	im.afterBatch = func() { elapsed.Add(int64(400 * time.Millisecond)) } // a batch takes 0.4 s
	if err := im.run(context.Background(), &lineSource{n: 5 * importBatch}); err != nil {
		t.Fatal(err)
	}
	// Batches end at 0, 0.4, 0.8, 1.2, 1.6 s: one line at 1.2 s (the one at 0 s is not due) and the
	// final one.
	if got := strings.Count(progress.String(), "\r"); got != 2 || !strings.HasSuffix(progress.String(), "5,000 lines · 2,500 lines/s\n") {
		t.Errorf("progress %q: want 2 lines, the last the final count", progress.String())
	}
	if isTerminal(&progress) {
		t.Error("a buffer is not a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a file is not a terminal")
	}
}

// The command end to end as an operator runs it: a legacy bcrypt account and a Google-linked one
// imported from a file sign in with their old password and ID; an export of that database imported
// into an empty one gives the same users, who sign in with the same passwords; importing again is a
// no-op that exits 0; a refused line from standard input makes the exit status non-zero; each run is
// one users_imported event.
func TestUsersImportCommandEndToEnd(t *testing.T) {
	legacy := t.TempDir()
	file := filepath.Join(legacy, "legacy.jsonl")
	hash := bcryptOf(t, "correct horse battery", 4)
	os.WriteFile(file, []byte(jsonLine(map[string]any{"id": "123", "email": "legacy@example.com", "name": "Legacy", "passwordHash": hash, "createdAt": "2019-05-04T03:02:01Z"})+"\n"+
		jsonLine(map[string]any{"id": "124", "email": "admin@example.com", "name": "Admin", "userType": "admin", "passwordHash": hash, "google": "g-124", "emailVerified": true})+"\n"), 0o600)
	if out, err := runCLI(t, legacy, nil, "users", "import", file); err == nil || !strings.Contains(out, "migrate up") {
		t.Fatalf("import before migrating: %v %s", err, out)
	}
	if out, err := runCLI(t, legacy, nil, "migrate", "up"); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	if out, err := runCLI(t, legacy, nil, "users", "import", "--dry-run", file); err != nil || !strings.Contains(out, "would create 2") {
		t.Fatalf("dry run: %v %s", err, out)
	}
	if out, err := runCLI(t, legacy, nil, "users", "import", file); err != nil || !strings.Contains(out, "created 2, unchanged 0, updated 0, refused 0") {
		t.Fatalf("import: %v %s", err, out)
	}
	if out, err := runCLI(t, legacy, nil, "users", "import", file); err != nil || !strings.Contains(out, "created 0, unchanged 2") {
		t.Fatalf("import again: %v %s", err, out)
	}
	cmd := exec.Command(binary, "users", "import", "-")
	cmd.Dir = legacy
	cmd.Stdin = strings.NewReader(`{"id":"125","email":"new@example.com"}` + "\n" + `{"id":"126","email":"bad"}` + "\n")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "line 2: refused: email must be a valid email address") ||
		!strings.Contains(string(out), "created 1") {
		t.Fatalf("import from stdin with a refused line: %v %s", err, out)
	}

	srv, url, _ := startServe(t, legacy)
	access := loginOver(t, url, "legacy@example.com")
	if sub := subOf(t, access); sub != "123" {
		t.Fatalf("the imported account signs in as %q, want 123", sub)
	}
	admin := loginOver(t, url, "admin@example.com")
	events := get(t, url+"/api/admin/security/events?type=users_imported", admin)
	if strings.Count(events, `"eventType":"users_imported"`) != 3 || !strings.Contains(events, `"file":"legacy.jsonl"`) || !strings.Contains(events, `"file":"-"`) {
		t.Fatalf("users_imported events (one a run, dry run none): %s", events)
	}
	srv.Process.Signal(syscall.SIGTERM)
	srv.Wait()

	export := filepath.Join(legacy, "export.jsonl")
	if out, err := runCLI(t, legacy, nil, "users", "export", "--output", export); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	body, _ := os.ReadFile(export)
	if !strings.Contains(string(body), `"id":"123"`) || !strings.Contains(string(body), `"passwordHash":"$argon2id$`) || !strings.Contains(string(body), `"google":"g-124"`) {
		t.Fatalf("export (123's bcrypt hash rehashed at its login): %s", body)
	}
	fresh := t.TempDir()
	runCLI(t, fresh, nil, "migrate", "up")
	if out, err := runCLI(t, fresh, nil, "users", "import", export); err != nil || !strings.Contains(out, "created 3") {
		t.Fatalf("import of the export: %v %s", err, out)
	}
	if out, err := runCLI(t, fresh, nil, "users", "export"); err != nil || !sameLines(t, strings.TrimSuffix(out, "exported 3 users\n"), string(body)) {
		t.Fatalf("the round trip changed the users:\n%s\nwant\n%s", out, body)
	}
	srv, url, _ = startServe(t, fresh)
	defer func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }()
	for email, id := range map[string]string{"legacy@example.com": "123", "admin@example.com": "124"} {
		if sub := subOf(t, loginOver(t, url, email)); sub != id {
			t.Errorf("%s signs in as %q after the round trip, want %s", email, sub, id)
		}
	}
}

// sameLines reports whether two exports hold the same lines, each parsed.
func sameLines(t *testing.T, a, b string) bool {
	t.Helper()
	parse := func(s string) []userLine {
		var out []userLine
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			var u userLine
			if err := json.Unmarshal([]byte(l), &u); err != nil {
				return nil
			}
			out = append(out, u)
		}
		return out
	}
	x, y := parse(a), parse(b)
	if len(x) == 0 || len(x) != len(y) {
		return false
	}
	for i := range x {
		// An import records a verification at its own time: the export says only whether.
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

func subOf(t *testing.T, access string) string {
	t.Helper()
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", access)
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sub string `json:"sub"`
	}
	json.Unmarshal(body, &c)
	return c.Sub
}

// On PostgreSQL an import and a signup or a sign-in can interleave: a row another transaction
// inserts after the import's read, but before its insert, makes the insert wait for that
// transaction, and once it commits the line is classified again against what it wrote: the email
// belongs to the signup's account, the identity to the sign-in's, and the line leaves nothing
// behind. (SQLite runs one write transaction at a time: nothing can come between.)
func TestImportClassifiesAgainALineAConcurrentWriterOvertook(t *testing.T) {
	db := postgrestest.MustOpenDB(t)
	ctx := context.Background()
	now := time.Now()
	if err := db.CreateUser(ctx, &fluxauth.User{ID: "holder", Email: "holder@example.com", UserType: "client", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, line, insert, want string
	}{
		{"email", `{"id":"r1","email":"Taken@example.com"}`,
			`INSERT INTO users (id, email, password_hash, name, user_type, created_at, updated_at, email_key) VALUES ('signup', 'taken@example.com', '', '', 'client', now(), now(), 'taken@example.com')`,
			"email Taken@example.com belongs to user signup, not to this line's user r1"},
		{"identity", `{"id":"r2","email":"r2@example.com","google":"g-race"}`,
			`INSERT INTO identities (provider, subject, user_id, email, email_verified, created_at) VALUES ('google', 'g-race', 'holder', '', false, now())`,
			"the google identity of this line's user r2 is linked to user holder"},
	} {
		t.Run(c.name, func(t *testing.T) {
			other, err := db.Pool().Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Rollback(ctx)
			if _, err := other.Exec(ctx, c.insert); err != nil {
				t.Fatal(err)
			}
			type result struct {
				report string
				counts importCounts
				err    error
			}
			done := make(chan result, 1)
			go func() {
				r, n, err := tryImport(t, db, c.line+"\n", fluxauth.ImportOptions{})
				done <- result{r, n, err}
			}()
			// The import's insert waits on the other transaction's row.
			deadline := time.Now().Add(30 * time.Second)
			for {
				var waiting int
				if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				if waiting > 0 {
					break
				}
				select {
				case r := <-done:
					t.Fatalf("the import finished without waiting for the other transaction: %+v", r)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatal("the import never waited on the other transaction's row")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := other.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil || r.counts.Refused != 1 || refusedLines(r.report)[1] != c.want {
				t.Fatalf("import: %v %+v\n%s\nwant line 1 refused: %s", r.err, r.counts, r.report, c.want)
			}
			id := idOfLine(c.line)
			if _, err := db.UserByID(ctx, id); !errors.Is(err, fluxauth.ErrNotFound) {
				t.Fatalf("the overtaken line left account %s behind: %v", id, err)
			}
		})
	}
}
