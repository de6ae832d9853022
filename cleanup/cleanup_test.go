package cleanup_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/cleanup"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/internal/testserver"
	"github.com/fluxstudio/fluxauth/postgres"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
	"github.com/fluxstudio/fluxauth/token"
)

type store interface{ fluxauth.Backend }

// backend is a store under test and a way to write many rows fast: the Store interface inserts one
// token at a time, which would make seeding 100,000 rows the slowest part of the test.
type backend struct {
	store
	// bulkDead writes n dead tokens past retention, in sessions of 5 (4 spent links and a tip), all
	// expired at old; the first half revoked at old too. Token hashes are "dead-<i>".
	bulkDead func(tb testing.TB, n int, old time.Time)
}

var stores = map[string]func(tb testing.TB) backend{
	"sqlite": func(tb testing.TB) backend {
		db := sqlitetest.MustOpenDB(tb)
		return backend{db, func(tb testing.TB, n int, old time.Time) {
			raw, err := sql.Open("sqlite", db.Path()+"?_pragma=busy_timeout(5000)")
			if err != nil {
				tb.Fatal(err)
			}
			defer raw.Close()
			ts := old.UTC().Format("2006-01-02T15:04:05.000000Z")
			_, err = raw.Exec(`WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n+1 FROM seq WHERE n < ?1 - 1)
				INSERT INTO refresh_tokens (id, session_id, user_id, token_hash, session_created_at, created_at, last_used_at, expires_at, spent_at, revoked_at)
				SELECT printf('00000000-0000-4000-8000-%012d', n), printf('00000000-0000-4000-9000-%012d', n / 5), 'bulk',
					'dead-' || n, ?2, ?2, ?2, ?2, CASE WHEN n % 5 < 4 THEN ?2 END, CASE WHEN n < ?1 / 2 THEN ?2 END FROM seq`, n, ts)
			if err != nil {
				tb.Fatal(err)
			}
		}}
	},
	"postgres": func(tb testing.TB) backend {
		db := postgrestest.MustOpenDB(tb)
		return backend{db, func(tb testing.TB, n int, old time.Time) {
			_, err := db.Pool().Exec(context.Background(), `INSERT INTO refresh_tokens
				(id, session_id, user_id, token_hash, session_created_at, created_at, last_used_at, expires_at, spent_at, revoked_at)
				SELECT format('00000000-0000-4000-8000-%s', lpad(g::text, 12, '0'))::uuid,
					format('00000000-0000-4000-9000-%s', lpad((g / 5)::text, 12, '0'))::uuid, 'bulk', 'dead-' || g,
					$2::timestamptz, $2::timestamptz, $2::timestamptz, $2::timestamptz, CASE WHEN g % 5 < 4 THEN $2::timestamptz END, CASE WHEN g < $1::int / 2 THEN $2::timestamptz END
				FROM generate_series(0, $1::int - 1) AS g`, n, old)
			if err != nil {
				tb.Fatal(err)
			}
		}}
	},
}

const (
	tokenRetention = 168 * time.Hour
	eventRetention = 2160 * time.Hour
)

// seeder writes sessions straight to the store.
type seeder struct {
	tb    testing.TB
	s     store
	batch []*fluxauth.RefreshToken
}

func (sd *seeder) add(t *fluxauth.RefreshToken) *fluxauth.RefreshToken {
	sd.batch = append(sd.batch, t)
	if len(sd.batch) == 5000 {
		sd.flush()
	}
	return t
}

func (sd *seeder) flush() {
	sd.tb.Helper()
	batch := sd.batch
	sd.batch = nil
	err := sd.s.Update(context.Background(), func(tx fluxauth.Tx) error {
		for _, t := range batch {
			if err := tx.InsertRefreshToken(context.Background(), t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		sd.tb.Fatal(err)
	}
}

// chain adds a session of n tokens created at start, each spent by the next; the last is the tip.
// expires is the tip's expiry; revoked, when set, marks every link revoked then.
func (sd *seeder) chain(n int, start, expires, revoked time.Time) []*fluxauth.RefreshToken {
	sid := uuid.NewString()
	var out []*fluxauth.RefreshToken
	parent := ""
	for i := 0; i < n; i++ {
		t := &fluxauth.RefreshToken{
			ID: uuid.NewString(), SessionID: sid, ParentID: parent, UserID: "user-" + sid[:8], TokenHash: uuid.NewString(),
			SessionCreatedAt: start, CreatedAt: start.Add(time.Duration(i) * time.Minute), LastUsedAt: start,
			ExpiresAt: expires.Add(time.Duration(i-n+1) * time.Minute), RevokedAt: revoked,
		}
		if i < n-1 {
			t.SpentAt = t.CreatedAt.Add(time.Minute)
		}
		parent = t.ID
		out = append(out, sd.add(t))
	}
	return out
}

// findHash looks the token up by hash, as the refresh path does, and returns the lookup's error.
func findHash(s store, hash string) error {
	ctx := context.Background()
	return s.Update(ctx, func(tx fluxauth.Tx) error {
		_, err := tx.RefreshTokenByHash(ctx, hash)
		return err
	})
}

// rotatedDaily adds a live session of n links, one created each day up to now, each expiring ttl
// after it was created and spent when the next was made: the early links expired long ago while
// the session lives on.
func (sd *seeder) rotatedDaily(n int, now time.Time, ttl time.Duration) []*fluxauth.RefreshToken {
	sid := uuid.NewString()
	start := now.Add(-time.Duration(n-1) * 24 * time.Hour)
	var out []*fluxauth.RefreshToken
	parent := ""
	for i := 0; i < n; i++ {
		created := start.Add(time.Duration(i) * 24 * time.Hour)
		t := &fluxauth.RefreshToken{
			ID: uuid.NewString(), SessionID: sid, ParentID: parent, UserID: "user-" + sid[:8], TokenHash: uuid.NewString(),
			SessionCreatedAt: start, CreatedAt: created, LastUsedAt: created, ExpiresAt: created.Add(ttl),
		}
		if i < n-1 {
			t.SpentAt = created.Add(24 * time.Hour)
			t.LastUsedAt = t.SpentAt
		}
		parent = t.ID
		out = append(out, sd.add(t))
	}
	return out
}

func mustFindHash(tb testing.TB, s store, hash string, want bool) {
	tb.Helper()
	err := findHash(s, hash)
	if want && err != nil {
		tb.Fatalf("token %s was deleted: %v", hash, err)
	}
	if !want && !errors.Is(err, fluxauth.ErrNotFound) {
		tb.Fatalf("token %s was kept (%v)", hash, err)
	}
}

func mustFind(tb testing.TB, s store, t *fluxauth.RefreshToken, want bool) {
	tb.Helper()
	err := findHash(s, t.TokenHash)
	if want && err != nil {
		tb.Fatalf("token %s (expires %s, revoked %s) was deleted: %v", t.ID, t.ExpiresAt, t.RevokedAt, err)
	}
	if !want && !errors.Is(err, fluxauth.ErrNotFound) {
		tb.Fatalf("token %s (expires %s, revoked %s) was kept", t.ID, t.ExpiresAt, t.RevokedAt)
	}
}

func TestCleanupDeletesOnlyWhatRetentionNoLongerNeeds(t *testing.T) {
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := open(t)
			s := b.store
			clock := testenv.NewClock(time.Now())
			now := clock.Now()
			sd := &seeder{tb: t, s: s}
			old := now.Add(-tokenRetention - 24*time.Hour)
			var kept []*fluxauth.RefreshToken
			// 100,000 rows past retention: revoked sessions and expired ones, chains of 5.
			b.bulkDead(t, 100000, old)
			// Live sessions refreshed daily for 25 days with week-long tokens: their first ten links
			// were spent and expired before the cutoff, yet the whole chain stays.
			for i := 0; i < 5; i++ {
				kept = append(kept, sd.rotatedDaily(25, now, tokenRetention)...)
			}
			// Within retention: revoked and expired an hour ago.
			kept = append(kept, sd.chain(3, now.Add(-48*time.Hour), now.Add(time.Hour), now.Add(-time.Hour))...)
			kept = append(kept, sd.chain(3, now.Add(-200*time.Hour), now.Add(-time.Hour), time.Time{})...)
			sd.flush()

			var events []*fluxauth.SecurityEvent
			for i := 0; i < 3000; i++ {
				events = append(events, &fluxauth.SecurityEvent{ID: uuid.NewString(), Type: "failed_login", Severity: "warning",
					CreatedAt: now.Add(-eventRetention - time.Duration(i+1)*time.Minute)})
			}
			recent := &fluxauth.SecurityEvent{ID: uuid.NewString(), Type: "signup", Severity: "info", CreatedAt: now.Add(-eventRetention + time.Hour)}
			events = append(events, recent)
			for i := 0; i < len(events); i += 500 {
				if err := s.InsertEvents(context.Background(), events[i:min(i+500, len(events))]...); err != nil {
					t.Fatal(err)
				}
			}

			var logs strings.Builder
			var logMu sync.Mutex
			job := &cleanup.Job{Store: s, TokenRetention: tokenRetention, EventRetention: eventRetention, Batch: 10000,
				Clock: clock, Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))}
			rep, err := job.Run(context.Background(), true)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Tokens != 100000 || rep.Events != 3000 || !rep.DryRun {
				t.Fatalf("dry run report %+v", rep)
			}
			mustFindHash(t, s, "dead-0", true) // the dry run deleted nothing
			mustFindHash(t, s, "dead-99999", true)

			rep, err = job.Run(context.Background(), false)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Tokens != 100000 || rep.Events != 3000 {
				t.Fatalf("report %+v", rep)
			}
			for _, k := range kept {
				mustFind(t, s, k, true)
			}
			for i := 0; i < 100000; i += 997 {
				mustFindHash(t, s, fmt.Sprintf("dead-%d", i), false)
			}
			if n, _ := s.CountDeadTokens(context.Background(), now.Add(-tokenRetention)); n != 0 {
				t.Fatalf("%d dead tokens left", n)
			}
			left, err := s.ListEvents(context.Background(), fluxauth.EventFilter{Limit: 10})
			if err != nil || len(left) != 1 || left[0].ID != recent.ID {
				t.Fatalf("events left (cleanup records nothing in the audit log): %v %+v", err, left)
			}
			logMu.Lock()
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			logMu.Unlock()
			last := lines[len(lines)-1]
			if len(lines) != 2 || !strings.Contains(last, "refresh_tokens=100000") || !strings.Contains(last, "security_events=3000") || !strings.Contains(last, "duration=") {
				t.Fatalf("want one summary line per run, got:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

// Cleanup never touches a live session (fluxauth.CleanupStore): its old links stay even when each
// was spent and expired long before the cutoff, and its chain answers as before: an old token is
// refused as expired (not unknown), a recently spent one still reveals reuse. The session is built
// by real refreshes, a day apart.
func TestCleanupKeepsEveryLinkOfALiveSession(t *testing.T) {
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t).store
			ctx := context.Background()
			clock := testenv.NewClock(time.Now().Add(-40 * 24 * time.Hour))
			cfg := testserver.Config(t)
			cfg.Account.RefreshTTL = tokenRetention // a week, as retention: the early links expire in the window
			accounts := testserver.Start(t, cfg, app.Deps{Store: s, Clock: clock}).Accounts
			dev := account.Device{Fingerprint: "fp-laptop", IP: "192.0.2.10", UserAgent: "FluxStudio/3.1"}
			signup := func(email string) *account.Result {
				t.Helper()
				res, err := accounts.Signup(ctx, account.SignupInput{Email: email, Password: "correct horse battery", Name: "Ada", Device: dev})
				if err != nil {
					t.Fatalf("Signup: %v", err)
				}
				return res
			}
			// A session nobody refreshed: dead once its only token expired, so cleanup has one row to
			// delete and a job that deletes nothing cannot pass.
			dead := signup("gone@example.com")
			raws := []string{signup("ada@example.com").RefreshToken}
			for day := 1; day <= 25; day++ {
				clock.Advance(24 * time.Hour)
				res, err := accounts.Refresh(ctx, raws[len(raws)-1], dev)
				if err != nil {
					t.Fatalf("refresh on day %d: %v", day, err)
				}
				raws = append(raws, res.RefreshToken)
			}
			// Now, with a week's retention, links 0..10 were spent and expired before the cutoff.
			cutoff := clock.Now().Add(-tokenRetention)
			var old *fluxauth.RefreshToken
			err := s.Update(ctx, func(tx fluxauth.Tx) (err error) {
				old, err = tx.RefreshTokenByHash(ctx, token.HashRefreshToken(raws[10]))
				return err
			})
			if err != nil || !old.Spent() || !old.ExpiresAt.Before(cutoff) {
				t.Fatalf("fixture: link 10 is %+v, %v; want spent and expired before %s", old, err, cutoff)
			}

			job := &cleanup.Job{Store: s, TokenRetention: tokenRetention, EventRetention: eventRetention, Batch: 100,
				Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			for _, dryRun := range []bool{true, false} {
				rep, err := job.Run(ctx, dryRun)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Tokens != 1 {
					t.Fatalf("dry run %v: cleanup counted %d tokens, want 1 (the dead session's)", dryRun, rep.Tokens)
				}
			}
			if err := findHash(s, token.HashRefreshToken(dead.RefreshToken)); !errors.Is(err, fluxauth.ErrNotFound) {
				t.Fatalf("the dead session's token was kept: %v", err)
			}
			for i, raw := range raws {
				if err := findHash(s, token.HashRefreshToken(raw)); err != nil {
					t.Fatalf("link %d of the live session was deleted: %v", i, err)
				}
			}

			// The first token, spent 25 days ago and expired since, is refused as expired, which
			// changes nothing; deleted, it would be an unknown token.
			_, err = accounts.Refresh(ctx, raws[0], dev)
			if code := fluxauth.ErrorCode(err); code != fluxauth.ERefreshTokenExpired {
				t.Fatalf("presenting the session's first token again: %v, want %s", err, fluxauth.ERefreshTokenExpired)
			}
			// A token spent four days ago and not yet expired is reuse: the session ends.
			_, err = accounts.Refresh(ctx, raws[20], dev)
			if code := fluxauth.ErrorCode(err); code != fluxauth.ERefreshTokenReused {
				t.Fatalf("presenting a token spent four days ago: %v, want %s", err, fluxauth.ERefreshTokenReused)
			}
			_, err = accounts.Refresh(ctx, raws[len(raws)-1], dev)
			if code := fluxauth.ErrorCode(err); code != fluxauth.ERefreshTokenRevoked {
				t.Fatalf("the live tip after reuse was detected: %v, want %s", err, fluxauth.ERefreshTokenRevoked)
			}
		})
	}
}

func TestRefreshesKeepWorkingWhileCleanupRuns(t *testing.T) {
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			s := b.store
			clock := testenv.NewClock(time.Now())
			now := clock.Now()
			sd := &seeder{tb: t, s: s}
			b.bulkDead(t, 30000, now.Add(-tokenRetention-24*time.Hour))
			live := sd.chain(1, now, now.Add(time.Hour), time.Time{})[0]
			sd.flush()
			job := &cleanup.Job{Store: s, TokenRetention: tokenRetention, EventRetention: eventRetention, Batch: 1000,
				Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			done := make(chan error, 1)
			go func() { _, err := job.Run(context.Background(), false); done <- err }()
			// Rotate the live session the way a refresh does, until cleanup finishes.
			tip, rotations := live, 0
			for finished := false; !finished || rotations < 20; rotations++ {
				select {
				case err := <-done:
					if err != nil {
						t.Fatal(err)
					}
					finished = true
				default:
				}
				next := &fluxauth.RefreshToken{ID: uuid.NewString(), SessionID: tip.SessionID, ParentID: tip.ID, UserID: tip.UserID,
					TokenHash: uuid.NewString(), SessionCreatedAt: tip.SessionCreatedAt, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
				err := s.Update(context.Background(), func(tx fluxauth.Tx) error {
					if err := tx.LockSession(context.Background(), tip.SessionID); err != nil {
						return err
					}
					ok, err := tx.RotateRefreshToken(context.Background(), tip.ID, next, now)
					if err == nil && !ok {
						err = errors.New("the live token was no longer live")
					}
					return err
				})
				if err != nil {
					t.Fatalf("refresh %d during cleanup: %v", rotations, err)
				}
				tip = next
			}
			mustFind(t, s, live, true)
		})
	}
}

func TestOnlyOneInstanceCleansAtATime(t *testing.T) {
	url := postgrestest.CreateDatabase(t)
	open := func() *postgres.DB { return postgrestest.Open(t, url) }
	a, b := open(), open()
	if _, err := a.MigrateUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Instance a takes the lock and holds it, blocked on release, while b tries.
	holding, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	releaseA := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseA() // a failure below must not leave a holding the lock (and its connection)
	type outcome struct {
		ok  bool
		err error
	}
	aDone := make(chan outcome, 1)
	go func() {
		ok, err := a.TryExclusive(context.Background(), "cleanup", func(ctx context.Context) error {
			close(holding)
			<-release
			return nil
		})
		aDone <- outcome{ok, err}
	}()
	select {
	case <-holding:
	case o := <-aDone:
		t.Fatalf("instance a did not take the free lock: %v, %v", o.ok, o.err)
	}
	ran := false
	ok, err := b.TryExclusive(context.Background(), "cleanup", func(context.Context) error { ran = true; return nil })
	if err != nil || ok || ran {
		t.Fatalf("instance b while a holds the lock: ok %v, ran %v, err %v; want skipped", ok, ran, err)
	}
	releaseA()
	if o := <-aDone; !o.ok || o.err != nil {
		t.Fatalf("instance a: %v, %v", o.ok, o.err)
	}
	// Once released, the lock can be taken again, by either instance.
	if ok, err := b.TryExclusive(context.Background(), "cleanup", func(context.Context) error { return nil }); !ok || err != nil {
		t.Fatalf("lock not released: %v %v", ok, err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// The use of an ID token is forgotten an hour after the token expired, and not before: until then
// some instance could still take the token for unexpired and must find it used.
func TestCleanupForgetsIDTokenUsesAnHourAfterTheirTokensExpired(t *testing.T) {
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t).store
			ctx := context.Background()
			clock := testenv.NewClock(time.Now())
			now := clock.Now()
			use := func(expires time.Time) *fluxauth.IDTokenUse {
				return &fluxauth.IDTokenUse{Provider: "google", Key: uuid.NewString(), UsedAt: expires.Add(-time.Hour), ExpiresAt: expires}
			}
			record := func(u *fluxauth.IDTokenUse) bool {
				t.Helper()
				var ok bool
				if err := s.Update(ctx, func(tx fluxauth.Tx) error {
					var err error
					ok, err = tx.UseIDToken(ctx, u)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return ok
			}
			gone := []*fluxauth.IDTokenUse{use(now.Add(-48 * time.Hour)), use(now.Add(-61 * time.Minute)), use(now.Add(-61 * time.Minute))}
			kept := []*fluxauth.IDTokenUse{use(now.Add(-59 * time.Minute)), use(now), use(now.Add(time.Hour))}
			for _, u := range append(gone, kept...) {
				record(u)
			}
			job := &cleanup.Job{Store: s, TokenRetention: tokenRetention, EventRetention: eventRetention, Batch: 2,
				Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			for _, dryRun := range []bool{true, false} {
				rep, err := job.Run(ctx, dryRun)
				if err != nil || rep.IDTokenUses != len(gone) {
					t.Fatalf("dry run %v: report %+v, %v; want %d ID-token uses", dryRun, rep, err, len(gone))
				}
				if !strings.Contains(rep.String(), fmt.Sprintf("id_token_uses: %s %d", map[bool]string{true: "would delete", false: "deleted"}[dryRun], len(gone))) {
					t.Fatalf("report text %q", rep.String())
				}
			}
			for _, u := range kept {
				if record(u) {
					t.Fatalf("the use of a token that expired at %v (now %v) was forgotten", u.ExpiresAt, now)
				}
			}
			for _, u := range gone {
				if !record(u) {
					t.Fatalf("the use of a token that expired at %v (now %v) was kept", u.ExpiresAt, now)
				}
			}
		})
	}
}

func TestNextRun(t *testing.T) {
	base := time.Date(2026, 11, 27, 2, 30, 0, 0, time.UTC)
	cases := []struct {
		now  time.Time
		at   string
		want time.Time
	}{
		{base, "03:00", time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)},
		{base, "02:00", time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)},
		{base.Add(30 * time.Minute), "03:00", time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		got, err := cleanup.NextRun(c.now, c.at)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("NextRun(%s, %s) = %s, %v; want %s", c.now, c.at, got, err, c.want)
		}
	}
	if _, err := cleanup.NextRun(base, "25:99"); err == nil {
		t.Error("bad time accepted")
	}
}

// Device tokens go once they have been dead or expired for the token retention; live ones, and
// ones that ended more recently, stay.
func TestCleanupDeletesDeviceTokensDeadOrExpiredPastRetention(t *testing.T) {
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t).store
			ctx := context.Background()
			clock := testenv.NewClock(time.Now())
			now := clock.Now()
			u := &fluxauth.User{ID: uuid.NewString(), Email: "devices@example.com", Name: "D", UserType: fluxauth.UserTypeClient,
				PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			device := func(expires, dead time.Time) *fluxauth.DeviceToken {
				return &fluxauth.DeviceToken{ID: uuid.NewString(), UserID: u.ID, CreatedAt: expires.Add(-90 * 24 * time.Hour), ExpiresAt: expires, DeadAt: dead}
			}
			past := now.Add(-tokenRetention - time.Minute)
			recent := now.Add(-tokenRetention + time.Minute)
			gone := []*fluxauth.DeviceToken{device(past, time.Time{}), device(now.Add(time.Hour), past), device(past, past)}
			kept := []*fluxauth.DeviceToken{device(recent, time.Time{}), device(now.Add(time.Hour), recent), device(now.Add(time.Hour), time.Time{})}
			if err := s.Update(ctx, func(tx fluxauth.Tx) error {
				for _, d := range append(gone, kept...) {
					if err := tx.InsertDeviceToken(ctx, d); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			job := &cleanup.Job{Store: s, TokenRetention: tokenRetention, EventRetention: eventRetention, Batch: 2,
				Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			for _, dryRun := range []bool{true, false} {
				rep, err := job.Run(ctx, dryRun)
				if err != nil || rep.DeviceTokens != len(gone) {
					t.Fatalf("dry run %v: report %+v, %v; want %d device tokens", dryRun, rep, err, len(gone))
				}
				if !strings.Contains(rep.String(), fmt.Sprintf("device_tokens: %s %d", map[bool]string{true: "would delete", false: "deleted"}[dryRun], len(gone))) {
					t.Fatalf("report text %q", rep.String())
				}
			}
			if rep, err := job.Run(ctx, true); err != nil || rep.DeviceTokens != 0 {
				t.Fatalf("after the cleanup: report %+v, %v; want nothing left to delete", rep, err)
			}
			// The kept ones are still there: in a year they would all be past retention.
			if n, err := s.CountDeadDeviceTokens(ctx, now.Add(365*24*time.Hour)); err != nil || n != len(kept) {
				t.Fatalf("CountDeadDeviceTokens a year on = %d, %v; want the %d kept", n, err, len(kept))
			}
		})
	}
}

// Link tokens used or expired, and mails sent or abandoned, go once that is older than the token
// retention; usable tokens, pending mails and recent ones stay.
func TestCleanupDeletesLinkTokensAndSettledMailsPastRetention(t *testing.T) {
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t).store
			ctx := context.Background()
			clock := testenv.NewClock(time.Now())
			now := clock.Now()
			u := &fluxauth.User{ID: uuid.NewString(), Email: "links@example.com", Name: "L", UserType: fluxauth.UserTypeClient,
				PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			past := now.Add(-tokenRetention - time.Minute)
			recent := now.Add(-tokenRetention + time.Minute)
			link := func(expires time.Time) *fluxauth.LinkToken {
				id := uuid.NewString()
				return &fluxauth.LinkToken{ID: id, UserID: u.ID, Purpose: fluxauth.MailPasswordReset, TokenHash: token.HashLinkToken(id),
					CreatedAt: expires.Add(-time.Hour), ExpiresAt: expires}
			}
			for _, lt := range []*fluxauth.LinkToken{link(past), link(recent), link(now.Add(time.Hour))} {
				if err := s.InsertLinkToken(ctx, lt); err != nil {
					t.Fatal(err)
				}
			}
			mail := func(settle fluxauth.MailOutcome) {
				m := &fluxauth.OutboxMail{ID: uuid.NewString(), Kind: fluxauth.MailVerifyEmail, Address: "x@example.com", NextAttemptAt: past, CreatedAt: past}
				if err := s.Update(ctx, func(tx fluxauth.Tx) error { return tx.EnqueueMail(ctx, m) }); err != nil {
					t.Fatal(err)
				}
				if settle == (fluxauth.MailOutcome{}) {
					return
				}
				c, err := s.ClaimMail(ctx, now, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if ok, err := s.SettleMail(ctx, c.ID, c.Attempts, settle); !ok || err != nil {
					t.Fatalf("SettleMail = %t, %v", ok, err)
				}
			}
			mail(fluxauth.MailOutcome{SentAt: past})
			mail(fluxauth.MailOutcome{AbandonedAt: past, ErrorClass: "no_account"})
			mail(fluxauth.MailOutcome{SentAt: recent})
			mail(fluxauth.MailOutcome{}) // still pending, enqueued long ago
			job := &cleanup.Job{Store: s, TokenRetention: tokenRetention, EventRetention: eventRetention, Batch: 1,
				Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			for _, dryRun := range []bool{true, false} {
				rep, err := job.Run(ctx, dryRun)
				if err != nil || rep.LinkTokens != 1 || rep.Mails != 2 {
					t.Fatalf("dry run %v: report %+v, %v; want 1 link token and 2 mails", dryRun, rep, err)
				}
				if !strings.Contains(rep.String(), "link_tokens: ") || !strings.Contains(rep.String(), "mail_outbox: ") {
					t.Fatalf("report text %q", rep.String())
				}
			}
			if n, err := s.CountDeadLinkTokens(ctx, now.Add(365*24*time.Hour)); err != nil || n != 2 {
				t.Fatalf("link tokens kept = %d, %v; want 2", n, err)
			}
			if n, err := s.CountSettledMail(ctx, now.Add(365*24*time.Hour)); err != nil || n != 1 {
				t.Fatalf("settled mails kept = %d, %v; want the recent one", n, err)
			}
			if m, err := s.ClaimMail(ctx, now, time.Minute); err != nil || m == nil {
				t.Fatalf("the pending mail is gone: %v", err)
			}
		})
	}
}

// countedRuns is a store that tells when a cleanup has run.
type countedRuns struct {
	fluxauth.CleanupStore
	ran chan time.Time
	clk fluxauth.Clock
}

func (c countedRuns) TryExclusive(ctx context.Context, name string, fn func(context.Context) error) (bool, error) {
	ok, err := c.CleanupStore.TryExclusive(ctx, name, fn)
	c.ran <- c.clk.Now()
	return ok, err
}

func TestDailyCleanupRunsAtTheConfiguredTimeOfDayThenEvery24Hours(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	store := countedRuns{CleanupStore: sqlitetest.MustOpenDB(t), ran: make(chan time.Time, 10), clk: clock}
	job := &cleanup.Job{Store: store, TokenRetention: tokenRetention, EventRetention: eventRetention, Batch: 100,
		Clock: clock, Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- job.Daily(ctx, "03:00") }()
	next := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC) // 12:00 is past today's 03:00
	for day := range 3 {
		if at := clock.WaitTimers(t, 1); len(at) != 1 || !at[0].Equal(next) {
			t.Fatalf("day %d: cleanup waits for %v, want %v", day, at, next)
		}
		clock.Advance(next.Sub(clock.Now()) - time.Microsecond)
		select {
		case at := <-store.ran:
			t.Fatalf("day %d: cleanup ran at %v, before %v", day, at, next)
		default:
		}
		clock.Advance(time.Microsecond)
		if at := <-store.ran; !at.Equal(next) {
			t.Fatalf("day %d: cleanup ran at %v, want %v", day, at, next)
		}
		next = next.Add(24 * time.Hour)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Daily at shutdown: %v", err)
	}
	select {
	case at := <-store.ran:
		t.Fatalf("an extra cleanup ran at %v", at)
	default:
	}
}
