package account_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/audit"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/internal/testserver"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
	"github.com/fluxstudio/fluxauth/token"
)

// testStores are the stores every refresh rule is tested on.
var testStores = map[string]func(tb testing.TB) fluxauth.Backend{
	"sqlite":   func(tb testing.TB) fluxauth.Backend { return sqlitetest.MustOpenDB(tb) },
	"postgres": func(tb testing.TB) fluxauth.Backend { return postgrestest.MustOpenDB(tb) },
}

const grace = 2 * time.Second

// rig is an account service on a real store and a fake clock.
type rig struct {
	tb    testing.TB
	svc   *account.Service
	store fluxauth.Store
	clock *testenv.Clock
	limit *countingLimiter
	rec   *audit.Recorder
}

func newRig(tb testing.TB, store fluxauth.Backend, clock *testenv.Clock, keys *token.KeySet) *rig {
	tb.Helper()
	cfg := testserver.Config(tb)
	cfg.Account = account.Config{
		RefreshTTL: 168 * time.Hour, SessionMaxAge: 720 * time.Hour, RefreshGrace: grace,
		SignupUserTypes: []string{"client"}, FingerprintRevoke: true,
	}
	cfg.Rules = ratelimit.Rules{
		RefreshSession: ratelimit.Limit{Rate: 1000, Period: time.Minute, Burst: 1000},
		RefreshIP:      ratelimit.Limit{Rate: 1000, Period: time.Minute, Burst: 1000},
	}
	limit := &countingLimiter{Limiter: ratelimit.NewMemory(clock)}
	a := testserver.Start(tb, cfg, app.Deps{Store: store, Clock: clock, Keys: keys, Limiter: limit})
	return &rig{tb: tb, svc: a.Accounts, store: store, clock: clock, limit: limit, rec: a.Recorder}
}

func newRigOn(tb testing.TB, store fluxauth.Backend) *rig {
	return newRig(tb, store, testenv.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)), nil)
}

var device = account.Device{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (Macintosh) Chrome/120.0", Fingerprint: "fp-1"}

func (r *rig) signup(email string) *account.Result {
	r.tb.Helper()
	res, err := r.svc.Signup(context.Background(), account.SignupInput{
		Email: email, Password: "correct horse battery staple", Name: "Test", Device: device,
	})
	if err != nil {
		r.tb.Fatalf("signup: %v", err)
	}
	return res
}

func (r *rig) refresh(raw string) (*account.Result, error) {
	return r.svc.Refresh(context.Background(), raw, device)
}

func (r *rig) mustRefresh(raw string) string {
	r.tb.Helper()
	res, err := r.refresh(raw)
	if err != nil {
		r.tb.Fatalf("refresh: %v", err)
	}
	return res.RefreshToken
}

func (r *rig) wantRefused(raw, code string) {
	r.tb.Helper()
	res, err := r.refresh(raw)
	if err == nil {
		r.tb.Fatalf("refresh succeeded (%s…); want %s", res.RefreshToken[:8], code)
	}
	if got := fluxauth.ErrorCode(err); got != code {
		r.tb.Fatalf("refresh: %v; want %s", err, code)
	}
}

// row returns the stored token whose raw value is raw.
func (r *rig) row(raw string) *fluxauth.RefreshToken {
	r.tb.Helper()
	var rt *fluxauth.RefreshToken
	err := r.store.Update(context.Background(), func(tx fluxauth.Tx) error {
		var err error
		rt, err = tx.RefreshTokenByHash(context.Background(), token.HashRefreshToken(raw))
		return err
	})
	if err != nil {
		r.tb.Fatalf("token row: %v", err)
	}
	return rt
}

// events counts the audit log's events of type typ (all types when typ is "").
func (r *rig) events(typ string) int {
	r.tb.Helper()
	evs, err := r.store.ListEvents(context.Background(), fluxauth.EventFilter{Type: typ})
	if err != nil {
		r.tb.Fatal(err)
	}
	return len(evs)
}

// sessionState is what a refresh may write: every token of the user, as stored.
func (r *rig) sessionState(userID string) []fluxauth.RefreshToken {
	r.tb.Helper()
	var out []fluxauth.RefreshToken
	tips, err := r.store.ActiveSessions(context.Background(), userID, r.clock.Now())
	if err != nil {
		r.tb.Fatal(err)
	}
	for _, t := range tips {
		out = append(out, *t)
	}
	return out
}

func (r *rig) wantSessionRevoked(raw string) {
	r.tb.Helper()
	if !r.row(raw).Revoked() {
		r.tb.Fatal("the session was not revoked")
	}
	if n := r.events(fluxauth.EventSessionHijackAttempt); n != 1 {
		r.tb.Fatalf("%d session_hijack_attempt events; want 1", n)
	}
}

// countingLimiter counts the limiter calls per key.
type countingLimiter struct {
	ratelimit.Limiter
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingLimiter) Allow(ctx context.Context, key string, l ratelimit.Limit) (ratelimit.Result, error) {
	c.note(key)
	return c.Limiter.Allow(ctx, key, l)
}

func (c *countingLimiter) AllowAll(ctx context.Context, checks ...ratelimit.Check) ([]ratelimit.Result, error) {
	for _, ch := range checks {
		c.note(ch.Key)
	}
	return c.Limiter.AllowAll(ctx, checks...)
}

func (c *countingLimiter) note(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[key]++
}

func (c *countingLimiter) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.calls {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// eachStore runs fn as a subtest on every store.
func eachStore(t *testing.T, fn func(t *testing.T, r *rig)) {
	for name, open := range testStores {
		t.Run(name, func(t *testing.T) { fn(t, newRigOn(t, open(t))) })
	}
}

func TestRefreshDecisionTable(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, r *rig)
	}{
		{"live token rotates into a new token and is spent", func(t *testing.T, r *rig) {
			r0 := r.signup("live@example.com").RefreshToken
			r.clock.Advance(time.Hour)
			r1 := r.mustRefresh(r0)
			if r1 == r0 {
				t.Fatal("rotation returned the presented token")
			}
			p, s := r.row(r0), r.row(r1)
			if !p.Spent() || s.Spent() || s.ParentID != p.ID {
				t.Fatalf("after rotation: presented spent=%t, successor spent=%t parent ok=%t", p.Spent(), s.Spent(), s.ParentID == p.ID)
			}
			if !s.ExpiresAt.After(p.ExpiresAt) || !s.LastUsedAt.Equal(r.clock.Now()) {
				t.Fatal("a rotation did not extend the session or move its last use")
			}
		}},
		{"spent token within grace gets the same successor and writes nothing", func(t *testing.T, r *rig) {
			res := r.signup("grace@example.com")
			r1 := r.mustRefresh(res.RefreshToken)
			before := r.sessionState(res.User.ID)
			r.clock.Advance(grace)
			if got := r.mustRefresh(res.RefreshToken); got != r1 {
				t.Fatal("a spent token within the grace window got another token than its successor")
			}
			after := r.sessionState(res.User.ID)
			if len(after) != 1 || after[0] != before[0] {
				t.Fatalf("a grace hit wrote: %+v -> %+v", before, after)
			}
		}},
		{"spent token within grace after the chain moved on gets the live token", func(t *testing.T, r *rig) {
			r0 := r.signup("moved@example.com").RefreshToken
			r1 := r.mustRefresh(r0)
			r.clock.Advance(grace / 2)
			r2 := r.mustRefresh(r1)
			r3 := r.mustRefresh(r2)
			r.clock.Advance(grace / 2)
			if got := r.mustRefresh(r0); got != r3 {
				t.Fatal("a spent token within grace did not get the session's live token")
			}
			if r.row(r3).Spent() || r.row(r3).Revoked() {
				t.Fatal("the live token changed")
			}
		}},
		{"lost response past grace gets the same successor again, marked reissued, nothing else written", func(t *testing.T, r *rig) {
			res := r.signup("lost@example.com")
			r1 := r.mustRefresh(res.RefreshToken)
			before := r.row(r1)
			r.clock.Advance(3 * 24 * time.Hour)
			if got := r.mustRefresh(res.RefreshToken); got != r1 {
				t.Fatal("the retry did not return the unused successor")
			}
			after := r.row(r1)
			if after.ReissuedAt.IsZero() {
				t.Fatal("the reissued successor is not marked")
			}
			after.ReissuedAt = time.Time{}
			if *after != *before {
				t.Fatalf("a retry wrote more than the mark: %+v -> %+v", before, after)
			}
			if len(r.sessionState(res.User.ID)) != 1 {
				t.Fatal("a retry branched the chain")
			}
			// Retrying the same lost response again is idempotent.
			if got := r.mustRefresh(res.RefreshToken); got != r1 {
				t.Fatal("a second retry of the same token got another token")
			}
			// And the reissued token still rotates normally.
			if r2 := r.mustRefresh(r1); r2 == r1 {
				t.Fatal("the reissued token did not rotate")
			}
		}},
		{"a reissued token presented past grace with its successor unused is reuse", func(t *testing.T, r *rig) {
			r0 := r.signup("twice@example.com").RefreshToken
			r1 := r.mustRefresh(r0)
			r.clock.Advance(time.Minute)
			r.mustRefresh(r0) // lost response: r1 reissued
			r2 := r.mustRefresh(r1)
			r.clock.Advance(time.Minute)
			r.wantRefused(r1, fluxauth.ERefreshTokenReused)
			r.wantSessionRevoked(r2)
		}},
		{"a retry served earlier in the chain does not count against a later link", func(t *testing.T, r *rig) {
			r0 := r.signup("perlink@example.com").RefreshToken
			r1 := r.mustRefresh(r0)
			r.clock.Advance(time.Minute)
			r.mustRefresh(r0) // r1 reissued
			r2 := r.mustRefresh(r1)
			r.clock.Advance(24 * time.Hour)
			r3 := r.mustRefresh(r2) // r2 was issued once: its successor's loss is a first loss
			r.clock.Advance(24 * time.Hour)
			if got := r.mustRefresh(r2); got != r3 {
				t.Fatal("a later link was refused its own retry")
			}
		}},
		{"spent token past grace whose successor was used revokes the session", func(t *testing.T, r *rig) {
			r0 := r.signup("reuse@example.com").RefreshToken
			r1 := r.mustRefresh(r0)
			r2 := r.mustRefresh(r1)
			r.clock.Advance(grace + time.Millisecond)
			r.wantRefused(r0, fluxauth.ERefreshTokenReused)
			r.wantSessionRevoked(r2)
			r.wantRefused(r2, fluxauth.ERefreshTokenRevoked)
		}},
		{"revoked session's tokens are refused and change nothing", func(t *testing.T, r *rig) {
			res := r.signup("revoked@example.com")
			p := &account.Principal{UserID: res.User.ID, SessionID: res.SessionID}
			if err := r.svc.Logout(context.Background(), p, device); err != nil {
				t.Fatal(err)
			}
			n := r.events("")
			r.wantRefused(res.RefreshToken, fluxauth.ERefreshTokenRevoked)
			if r.events("") != n {
				t.Fatal("a refused refresh recorded an event")
			}
		}},
		{"expired token is refused", func(t *testing.T, r *rig) {
			r0 := r.signup("expired@example.com").RefreshToken
			r.clock.Advance(168*time.Hour + time.Second)
			r.wantRefused(r0, fluxauth.ERefreshTokenExpired)
		}},
		{"session past its absolute limit is refused however fresh its token", func(t *testing.T, r *rig) {
			tok := r.signup("maxage@example.com").RefreshToken
			r.clock.Advance(10 * time.Hour)
			tok = r.mustRefresh(tok)
			r.svc.Config.SessionMaxAge = 10 * time.Hour // lowered by the operator since
			r.wantRefused(tok, fluxauth.ERefreshTokenExpired)
		}},
		{"spent token past grace whose successor expired is refused as expired", func(t *testing.T, r *rig) {
			r0 := r.signup("oldloss@example.com").RefreshToken
			r.clock.Advance(100 * time.Hour)
			r.mustRefresh(r0)
			r.clock.Advance(67 * time.Hour) // r0 (168 h) still valid, r1 too; then past r0
			r.clock.Advance(2 * time.Hour)
			r.wantRefused(r0, fluxauth.ERefreshTokenExpired)
		}},
		{"lost-response retry whose successor has expired is refused as expired", func(t *testing.T, r *rig) {
			r0 := r.signup("shortttl@example.com").RefreshToken
			r.clock.Advance(time.Hour)
			r.svc.Config.RefreshTTL = 2 * time.Hour // lowered by the operator: r1 outlives r0 no more
			r.mustRefresh(r0)
			r.clock.Advance(3 * time.Hour)
			r.wantRefused(r0, fluxauth.ERefreshTokenExpired)
		}},
		{"unknown and forged tokens are invalid", func(t *testing.T, r *rig) {
			r0 := r.signup("forged@example.com").RefreshToken
			r.wantRefused(r0[:len(r0)-2]+"AA", fluxauth.EInvalidRefreshToken)
			r.wantRefused(strings.Repeat("x", 43), fluxauth.EInvalidRefreshToken)
			r.wantRefused(strings.Repeat("x", 4096), fluxauth.EInvalidRefreshToken)
			r.wantRefused("", fluxauth.EInvalidRefreshToken)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { eachStore(t, c.run) })
	}
}

func TestFingerprintRuleAppliesToEveryRow(t *testing.T) {
	other := device
	other.Fingerprint = "fp-thief"
	// A thief holding the token could simply leave the fingerprint out: none is a mismatch too.
	none := device
	none.Fingerprint = ""
	presented := map[string]account.Device{"another fingerprint": other, "no fingerprint": none}
	for name, present := range map[string]func(r *rig, r0 string) string{
		"rotation": func(r *rig, r0 string) string { return r0 },
		"grace hit": func(r *rig, r0 string) string {
			r.mustRefresh(r0)
			return r0
		},
		"lost-response retry": func(r *rig, r0 string) string {
			r.mustRefresh(r0)
			r.clock.Advance(time.Hour)
			return r0
		},
	} {
		for what, dev := range presented {
			t.Run(name+" with "+what, func(t *testing.T) {
				eachStore(t, func(t *testing.T, r *rig) {
					raw := present(r, r.signup("fp@example.com").RefreshToken)
					_, err := r.svc.Refresh(context.Background(), raw, dev)
					if fluxauth.ErrorCode(err) != fluxauth.ERefreshTokenRevoked {
						t.Fatalf("refresh with %s: %v; want refresh_token_revoked", what, err)
					}
					if r.events(fluxauth.EventDeviceFingerprintMismatch) != 1 || r.events(fluxauth.EventSessionHijackAttempt) != 1 {
						t.Fatal("the mismatch was not recorded")
					}
					r.wantRefused(raw, fluxauth.ERefreshTokenRevoked)
				})
			})
		}
	}
	for what, dev := range presented {
		t.Run("record policy answers and records "+what, func(t *testing.T) {
			eachStore(t, func(t *testing.T, r *rig) {
				r.svc.Config.FingerprintRevoke = false
				r0 := r.signup("fprec@example.com").RefreshToken
				r1 := r.mustRefresh(r0)
				res, err := r.svc.Refresh(context.Background(), r0, dev)
				if err != nil || res.RefreshToken != r1 {
					t.Fatalf("grace hit under the record policy: %v", err)
				}
				evs, err := r.store.ListEvents(context.Background(), fluxauth.EventFilter{Type: fluxauth.EventDeviceFingerprintMismatch})
				if err != nil || len(evs) != 1 {
					t.Fatalf("the mismatch was not recorded: %d events, %v", len(evs), err)
				}
				if missing, _ := evs[0].Metadata["fingerprintMissing"].(bool); missing != (dev.Fingerprint == "") {
					t.Fatalf("fingerprintMissing %v for %s", evs[0].Metadata["fingerprintMissing"], what)
				}
			})
		})
	}
	t.Run("a session without a fingerprint takes refreshes without one", func(t *testing.T) {
		eachStore(t, func(t *testing.T, r *rig) {
			res, err := r.svc.Signup(context.Background(), account.SignupInput{
				Email: "nofp@example.com", Password: "correct horse battery staple", Name: "Test", Device: none,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.svc.Refresh(context.Background(), res.RefreshToken, none); err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if r.events(fluxauth.EventDeviceFingerprintMismatch) != 0 {
				t.Fatal("a mismatch was recorded")
			}
		})
	})
}

// The security review's sequence: a thief holds R0, the victim its successor R1. With the clock past
// the grace window before every step, each side presents its newest token in turn.
func TestThiefAlternatingWithTheVictimIsCaughtWithinTwoRounds(t *testing.T) {
	eachStore(t, func(t *testing.T, r *rig) {
		r0 := r.signup("victim@example.com").RefreshToken
		r1 := r.mustRefresh(r0)
		thief, victim := r0, r1
		for round := 1; round <= 2; round++ {
			for _, side := range []*string{&thief, &victim} {
				r.clock.Advance(grace + time.Second)
				res, err := r.refresh(*side)
				if err != nil {
					if fluxauth.ErrorCode(err) != fluxauth.ERefreshTokenReused {
						t.Fatalf("round %d: %v; want refresh_token_reused", round, err)
					}
					if r.events(fluxauth.EventSessionHijackAttempt) != 1 {
						t.Fatal("no session_hijack_attempt recorded")
					}
					for _, tok := range []string{thief, victim} {
						r.wantRefused(tok, fluxauth.ERefreshTokenRevoked)
					}
					return
				}
				*side = res.RefreshToken
			}
		}
		t.Fatal("two rounds of alternating went undetected")
	})
}

// racers presents one token from n goroutines at once, through the given services in turn, and
// returns the refresh tokens they got.
func racers(t *testing.T, raw string, n int, svcs ...*account.Service) []string {
	t.Helper()
	out := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := svcs[i%len(svcs)].Refresh(context.Background(), raw, device)
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = res.RefreshToken
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("racing refreshes failed: %v", err)
	}
	return out
}

func wantOneToken(t *testing.T, got []string) string {
	t.Helper()
	for _, g := range got[1:] {
		if g != got[0] {
			t.Fatalf("racing refreshes of one token got different tokens")
		}
	}
	return got[0]
}

func TestRacingRefreshesOfOneTokenConvergeOnOneSuccessor(t *testing.T) {
	eachStore(t, func(t *testing.T, r *rig) {
		res := r.signup("racer@example.com")
		tok := wantOneToken(t, racers(t, res.RefreshToken, 20, r.svc))
		// Any racer's copy is the live token, well after the grace window.
		r.clock.Advance(grace + 500*time.Millisecond)
		if next := r.mustRefresh(tok); next == tok {
			t.Fatal("the converged token did not rotate")
		}
		if r.events(fluxauth.EventSessionHijackAttempt) != 0 {
			t.Fatal("honest racers were treated as theft")
		}
	})
}

func TestRacersSpreadOverTwoInstancesConvergeOnOneSuccessor(t *testing.T) {
	store := postgrestest.MustOpenDB(t)
	clock := testenv.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	keys, err := token.GenerateKeySet(clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := newRig(t, store, clock, keys), newRig(t, store, clock, keys)
	res := a.signup("twoinstances@example.com")
	tok := wantOneToken(t, racers(t, res.RefreshToken, 20, a.svc, b.svc))
	clock.Advance(grace + 500*time.Millisecond)
	if _, err := b.refresh(tok); err != nil {
		t.Fatalf("the converged token was refused on the other instance: %v", err)
	}
}

func TestRateLimitedRefreshChangesNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, r *rig) {
		r.svc.Rules.RefreshSession = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 1}
		res := r.signup("limited@example.com")
		r1 := r.mustRefresh(res.RefreshToken)
		before := r.sessionState(res.User.ID)
		r.wantRefused(r1, fluxauth.ERateLimited)
		if after := r.sessionState(res.User.ID); len(after) != 1 || after[0] != before[0] {
			t.Fatal("a refused refresh changed the session")
		}
	})
}

// A refresh whose first commit fails with a serialization error is run again by Store.Update; what
// lies outside the transaction (the limiter, the after-commit event) must happen once.
func TestRetriedRefreshTransactionChargesTheLimiterAndRecordsEventsOnce(t *testing.T) {
	store := postgrestest.MustOpenDB(t)
	r := newRigOn(t, store)
	r.svc.Config.SuspiciousRefreshRate = ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 10}
	res := r.signup("serial@example.com")
	r1 := r.mustRefresh(res.RefreshToken)

	// The next insert into refresh_tokens fails at commit, once, with 40001: a sequence is not rolled
	// back, so only the first attempt sees 1.
	_, err := store.Pool().Exec(context.Background(), `
		CREATE SEQUENCE fail_once;
		CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('fail_once') = 1 THEN
				RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
			END IF;
			RETURN NULL;
		END $$;
		CREATE CONSTRAINT TRIGGER fail_once AFTER INSERT ON refresh_tokens
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_once();`)
	if err != nil {
		t.Fatal(err)
	}
	other := device
	other.IP, other.UserAgent = "198.51.100.9", "curl/8.0"
	before := r.limit.count("refresh:session")
	if _, err := r.svc.Refresh(context.Background(), r1, other); err != nil {
		t.Fatalf("refresh across a serialization failure: %v", err)
	}
	var attempts int64
	if err := store.Pool().QueryRow(context.Background(), `SELECT last_value FROM fail_once`).Scan(&attempts); err != nil || attempts != 2 {
		t.Fatalf("the transaction ran %d times (%v); want 2, or the failure was not injected", attempts, err)
	}
	if n := r.limit.count("refresh:session") - before; n != 1 {
		t.Fatalf("the session limit was charged %d times", n)
	}
	if n := r.limit.count(ratelimit.Key("event", "refresh:fast:")); n != 1 {
		t.Fatalf("the refresh-rate dedupe was charged %d times", n)
	}
	if err := r.rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.events(fluxauth.EventSuspiciousTokenUsage); n != 2 { // new IP and user agent; too fast
		t.Fatalf("%d suspicious_token_usage events; want each of the two once", n)
	}
}

func TestLegacyRandomTokenStillRotatesIntoTheNewFormat(t *testing.T) {
	eachStore(t, func(t *testing.T, r *rig) {
		res := r.signup("legacy@example.com")
		legacy := strings.Repeat("L", 43) // as minted before tokens named their session
		now := r.clock.Now()
		err := r.store.Update(context.Background(), func(tx fluxauth.Tx) error {
			return tx.InsertRefreshToken(context.Background(), &fluxauth.RefreshToken{
				ID: uuid.NewString(), SessionID: uuid.NewString(), UserID: res.User.ID, TokenHash: token.HashRefreshToken(legacy),
				SessionCreatedAt: now, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour),
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		next := r.mustRefresh(legacy)
		if sid, isLegacy, err := r.svc.Refreshes.SessionID(next); err != nil || isLegacy || sid != r.row(legacy).SessionID {
			t.Fatalf("successor of a legacy token: session %q, legacy %t, %v", sid, isLegacy, err)
		}
		if again := r.mustRefresh(legacy); again != next {
			t.Fatal("racing presentations of a legacy token got different successors")
		}
	})
}
