package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/cleanup"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
)

// legacyJWTSecret is the legacy server's JWT_SECRET in these tests: short and plain, as such secrets
// are.
const legacyJWTSecret = "fluxstudio-dev-secret"

// withLegacy turns the exchange on with legacyJWTSecret, ending a month after clock's now.
func withLegacy(clock *testenv.Clock) envOption {
	return withConfig(func(c *config.Config) {
		c.Legacy = config.LegacySettings{Secret: legacyJWTSecret, UserClaim: "id", Until: clock.Now().Add(30 * 24 * time.Hour), MaxAge: 30 * 24 * time.Hour}
		c.Rules.LegacyIP = ratelimit.Limit{Rate: 1000, Period: time.Minute}
	})
}

// legacyEnv is an env with the exchange on, on a fake clock.
func legacyEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	clock := testenv.NewClock(time.Now())
	return newEnv(t, append([]envOption{withClock(clock), withLegacy(clock)}, opts...)...)
}

// onEachLegacyStore runs fn with a legacyEnv on SQLite, then on PostgreSQL.
func onEachLegacyStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, legacyEnv(t, withStore(sqlitetest.MustOpenDB(t)))) })
	t.Run("postgres", func(t *testing.T) { fn(t, legacyEnv(t, withStore(postgrestest.MustOpenDB(t)))) })
}

// legacyToken signs claims as the legacy server's generateToken does: HS256 with secret.
func legacyToken(tb testing.TB, secret string, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// hmacWithHeader signs claims with an HMAC-SHA256 under secret but any header: the algorithm
// confusion attack, where the header names another algorithm than the signature's.
func hmacWithHeader(tb testing.TB, header map[string]any, claims jwt.MapClaims) string {
	tb.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	mac := hmac.New(sha256.New, []byte(legacyJWTSecret))
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// exchange posts a legacy token to the exchange, with extra headers.
func (e *env) exchange(tb testing.TB, tok string, headers ...string) *response {
	tb.Helper()
	return e.do(tb, "POST", "/api/auth/legacy/exchange", map[string]string{"token": tok}, headers...)
}

func (e *env) mustExchange(tb testing.TB, tok string, headers ...string) *authResponse {
	tb.Helper()
	res := e.exchange(tb, tok, headers...)
	wantStatus(tb, "exchange", res, http.StatusOK)
	var ar authResponse
	res.json(tb, &ar)
	return &ar
}

// legacyUse reads the exchange's record of tok.
func (e *env) legacyUse(tb testing.TB, tok string) (*fluxauth.IDTokenUse, error) {
	tb.Helper()
	sum := sha256.Sum256([]byte(tok))
	var u *fluxauth.IDTokenUse
	err := e.Store.Update(context.Background(), func(tx fluxauth.Tx) error {
		var err error
		u, err = tx.IDTokenUse(context.Background(), "legacy", hex.EncodeToString(sum[:]))
		return err
	})
	return u, err
}

// claims of a legacy token issued at iat, lasting ttl (no exp when ttl is 0), for user id.
func legacyClaims(id any, iat time.Time, ttl time.Duration) jwt.MapClaims {
	c := jwt.MapClaims{"id": id, "email": "legacy@example.com", "userType": "client", "iat": iat.Unix()}
	if ttl != 0 {
		c["exp"] = iat.Add(ttl).Unix()
	}
	return c
}

// A legacy token (integer id, iat two hours ago, exp in a week) opens a session like a login: the
// AuthResponse old clients read, the user's own ID as sub, the device from the request, auth_time
// the legacy iat (kept by refreshes), the exchange on the audit log, and the token's use remembered
// until its exp; the token itself is in no event and no log line.
func TestALegacyTokenIsExchangedForASession(t *testing.T) {
	onEachLegacyStore(t, func(t *testing.T, e *env) {
		e.legacyUser(t, "123", "legacy@example.com", "designer")
		now := e.Clock.Now().Truncate(time.Second)
		iat, exp := now.Add(-2*time.Hour), now.Add(-2*time.Hour+7*24*time.Hour)
		tok := legacyToken(t, legacyJWTSecret, legacyClaims(123, iat, 7*24*time.Hour))

		ar := e.mustExchange(t, tok, "User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15")
		if ar.User.ID != "123" || ar.User.Email != "legacy@example.com" || ar.User.UserType != "designer" {
			t.Fatalf("user = %+v", ar.User)
		}
		if ar.Token != ar.AccessToken || ar.RefreshToken == "" || ar.TokenType != "Bearer" || ar.ExpiresIn != 900 {
			t.Fatalf("AuthResponse = %+v", ar)
		}
		c := claimsOf(t, ar.AccessToken)
		if c.Sub != "123" || c.AuthTime != iat.Unix() {
			t.Fatalf("claims sub %q auth_time %d, want 123 and the legacy iat %d", c.Sub, c.AuthTime, iat.Unix())
		}
		if res := e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.Status != 200 {
			t.Fatalf("/me with the exchanged access token: %d %s", res.Status, res.Body)
		}
		sessions := e.sessions(t, ar.AccessToken)
		if len(sessions) != 1 || sessions[0].ID != c.SID || sessions[0].DeviceName != "Safari on macOS" {
			t.Fatalf("sessions = %+v, want the exchanged one, named after its browser", sessions)
		}
		e.Clock.Advance(time.Minute)
		next := e.mustRefresh(t, ar.RefreshToken)
		if nc := claimsOf(t, next.AccessToken); nc.SID != c.SID || nc.AuthTime != iat.Unix() {
			t.Fatalf("after a refresh: sid %q auth_time %d, want %q and %d", nc.SID, nc.AuthTime, c.SID, iat.Unix())
		}

		evs := e.events(t, fluxauth.EventLegacyTokenExchanged)
		if len(evs) != 1 || evs[0].UserID != "123" || evs[0].Severity != fluxauth.SeverityInfo ||
			evs[0].Metadata["sessionId"] != c.SID || evs[0].Metadata["legacyIssuedAt"] != iat.UTC().Format(time.RFC3339) {
			t.Fatalf("legacy_token_exchanged events = %+v", evs)
		}
		use, err := e.legacyUse(t, tok)
		if err != nil {
			t.Fatal(err)
		}
		if use.SessionID != c.SID || !use.ExpiresAt.Equal(exp.Add(30*time.Second)) {
			t.Fatalf("the exchange's record = %+v, want session %s until exp plus the leeway, %v", use, c.SID, exp.Add(30*time.Second))
		}
		if strings.Contains(e.Logs.String(), tok) || strings.Contains(e.Logs.String(), strings.Split(tok, ".")[2]) {
			t.Fatal("the log holds the legacy token")
		}
	})
}

// Several tabs share one legacy token and exchange it at nearly the same moment: within the refresh
// grace window every one gets the first one's session (its live token, even once a tab has
// refreshed it), and nothing more is written; after it the token is refused and the replay
// recorded, while the session it opened goes on.
func TestALegacyTokenPresentedAgainGetsTheSameSessionWithinTheGraceAndIsRefusedAfter(t *testing.T) {
	onEachLegacyStore(t, func(t *testing.T, e *env) {
		e.legacyUser(t, "123", "legacy@example.com", fluxauth.UserTypeClient)
		tok := legacyToken(t, legacyJWTSecret, legacyClaims(123, e.Clock.Now().Add(-time.Hour), 7*24*time.Hour))
		first := e.mustExchange(t, tok)
		sid := claimsOf(t, first.AccessToken).SID

		e.Clock.Advance(4 * time.Second)
		second := e.mustExchange(t, tok)
		if claimsOf(t, second.AccessToken).SID != sid || second.RefreshToken != first.RefreshToken {
			t.Fatalf("a second exchange within the grace got another session or token")
		}
		e.Clock.Advance(3 * time.Second)
		rotated := e.mustRefresh(t, first.RefreshToken) // one tab refreshes
		e.Clock.Advance(3 * time.Second)                // 10 s after the first exchange: still within
		third := e.mustExchange(t, tok)
		if claimsOf(t, third.AccessToken).SID != sid || third.RefreshToken != rotated.RefreshToken {
			t.Fatalf("an exchange within the grace after a refresh: got another token than the session's live one")
		}
		if n := len(e.events(t, fluxauth.EventLegacyTokenExchanged)); n != 1 {
			t.Fatalf("%d legacy_token_exchanged events for one token, want 1", n)
		}

		e.Clock.Advance(time.Second) // past the grace
		res := e.exchange(t, tok)
		if res.Status != 401 || res.errorCode(t) != "invalid_token" {
			t.Fatalf("exchange after the grace: %d %s, want 401 invalid_token", res.Status, res.Body)
		}
		evs := e.events(t, fluxauth.EventSuspiciousTokenUsage)
		if len(evs) != 1 || evs[0].Metadata["reason"] != "legacy_token_replayed" || evs[0].Metadata["sessionId"] != sid ||
			evs[0].UserID != "123" || evs[0].Severity != fluxauth.SeverityWarning {
			t.Fatalf("suspicious_token_usage events = %+v, want one legacy_token_replayed naming the session", evs)
		}
		e.mustRefresh(t, rotated.RefreshToken) // the session goes on
		if sessions := e.sessions(t, rotated.AccessToken); len(sessions) != 1 {
			t.Fatalf("%d sessions, want the one exchange's", len(sessions))
		}
	})
}

// A second exchange within the grace of a session since ended is refused as the refresh would be.
func TestALegacyTokenPresentedAgainAfterItsSessionsLogoutIsRefused(t *testing.T) {
	e := legacyEnv(t)
	e.legacyUser(t, "123", "legacy@example.com", fluxauth.UserTypeClient)
	tok := legacyToken(t, legacyJWTSecret, legacyClaims(123, e.Clock.Now().Add(-time.Hour), 7*24*time.Hour))
	first := e.mustExchange(t, tok)
	wantStatus(t, "logout", e.do(t, "POST", "/api/auth/logout", nil, bearer(first.AccessToken)...), 204)
	if res := e.exchange(t, tok); res.Status != 401 {
		t.Fatalf("exchange within the grace of a logged-out session: %d %s, want 401", res.Status, res.Body)
	}
}

// Every kind of token the exchange must refuse gets 401 invalid_token, is recorded as a failed
// sign-in with why, and changes nothing: no session, and no record of the token, so the refusal
// is not what ends a token that is later right (the unknown user's, once the user is imported).
func TestLegacyTokensThatMustNotBeExchangedAreRefused(t *testing.T) {
	e := legacyEnv(t)
	e.legacyUser(t, "123", "legacy@example.com", fluxauth.UserTypeClient)
	now := e.Clock.Now()
	maxAge := 30 * 24 * time.Hour
	es256Key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es256, err := jwt.NewWithClaims(jwt.SigningMethodES256, legacyClaims(123, now, time.Hour)).SignedString(es256Key)
	if err != nil {
		t.Fatal(err)
	}
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, legacyClaims(123, now, time.Hour)).SignedString([]byte(legacyJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, legacyClaims(123, now, time.Hour)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	noTimes := legacyClaims(123, now, 0)
	delete(noTimes, "iat")
	noID := legacyClaims(123, now, time.Hour)
	delete(noID, "id")
	for _, tc := range []struct {
		name, token, detail string
	}{
		{"expired", legacyToken(t, legacyJWTSecret, legacyClaims(123, now.Add(-8*24*time.Hour), 7*24*time.Hour)), "expired"},
		{"no exp, iat past the max age", legacyToken(t, legacyJWTSecret, legacyClaims(123, now.Add(-maxAge-time.Second), 0)), "too_old"},
		{"no exp and no iat", legacyToken(t, legacyJWTSecret, noTimes), "no_exp_or_iat"},
		{"issued in the future", legacyToken(t, legacyJWTSecret, legacyClaims(123, now.Add(time.Hour), time.Hour)), "issued_in_future"},
		{"another secret", legacyToken(t, "another-secret", legacyClaims(123, now, time.Hour)), "bad_signature"},
		{"alg none", none, "algorithm"},
		{"an RS256 header on an HMAC under the secret", hmacWithHeader(t, map[string]any{"alg": "RS256", "typ": "JWT"}, legacyClaims(123, now, time.Hour)), "algorithm"},
		{"an ES256 header on an HMAC under the secret", hmacWithHeader(t, map[string]any{"alg": "ES256", "typ": "JWT"}, legacyClaims(123, now, time.Hour)), "algorithm"},
		{"a real ES256 token", es256, "algorithm"},
		{"HS512 under the secret", hs512, "algorithm"},
		{"no user claim", legacyToken(t, legacyJWTSecret, noID), "no_user"},
		{"a fractional user claim", legacyToken(t, legacyJWTSecret, legacyClaims(12.5, now, time.Hour)), "no_user"},
		{"a boolean user claim", legacyToken(t, legacyJWTSecret, legacyClaims(true, now, time.Hour)), "no_user"},
		{"an unknown user", legacyToken(t, legacyJWTSecret, legacyClaims(456, now, time.Hour)), "unknown_user"},
		{"not a JWT", "eyJhbGciOiJIUzI1NiIs", "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.events(t, fluxauth.EventFailedLogin))
			res := e.exchange(t, tc.token)
			if res.Status != 401 || res.errorCode(t) != "invalid_token" {
				t.Fatalf("%d %s, want 401 invalid_token", res.Status, res.Body)
			}
			evs := e.events(t, fluxauth.EventFailedLogin)
			if len(evs) != before+1 || evs[0].Metadata["reason"] != "invalid_legacy_token" || evs[0].Metadata["detail"] != tc.detail {
				t.Fatalf("failed_login events %+v, want one more with detail %s", evs[0], tc.detail)
			}
			if _, err := e.legacyUse(t, tc.token); !errors.Is(err, fluxauth.ErrNotFound) {
				t.Fatalf("the refused token's use was recorded (%v)", err)
			}
		})
	}
	if n := len(e.events(t, fluxauth.EventLegacyTokenExchanged)); n != 0 {
		t.Fatalf("%d exchanges recorded, want none", n)
	}
	unknown := legacyToken(t, legacyJWTSecret, legacyClaims(456, now, time.Hour))
	e.legacyUser(t, "456", "imported-later@example.com", fluxauth.UserTypeClient)
	e.mustExchange(t, unknown)
}

// A token without exp is exchanged while its iat is within the max age, and its exchange is
// remembered until then; the user claim may be a string, and another claim name may be configured.
func TestLegacyTokensWithoutExpAndWithOtherUserClaimsAreExchanged(t *testing.T) {
	e := legacyEnv(t)
	e.legacyUser(t, "usr_9f2", "string-id@example.com", fluxauth.UserTypeClient)
	iat := e.Clock.Now().Truncate(time.Second).Add(-29 * 24 * time.Hour)
	tok := legacyToken(t, legacyJWTSecret, legacyClaims("usr_9f2", iat, 0))
	ar := e.mustExchange(t, tok)
	if ar.User.ID != "usr_9f2" || claimsOf(t, ar.AccessToken).AuthTime != iat.Unix() {
		t.Fatalf("user %q auth_time %d", ar.User.ID, claimsOf(t, ar.AccessToken).AuthTime)
	}
	use, err := e.legacyUse(t, tok)
	if err != nil || !use.ExpiresAt.Equal(iat.Add(30*24*time.Hour)) {
		t.Fatalf("the exchange's record = %+v, %v; want it kept until iat + the max age", use, err)
	}

	clock := testenv.NewClock(time.Now())
	other := newEnv(t, withClock(clock), withLegacy(clock), withConfig(func(c *config.Config) { c.Legacy.UserClaim = "userId" }))
	other.legacyUser(t, "77", "user-id@example.com", fluxauth.UserTypeClient)
	claims := legacyClaims(1, clock.Now(), time.Hour)
	claims["userId"] = 77
	if ar := other.mustExchange(t, legacyToken(t, legacyJWTSecret, claims)); ar.User.ID != "77" {
		t.Fatalf("with FLUXAUTH_LEGACY_JWT_USER_CLAIM=userId: user %q, want 77", ar.User.ID)
	}
}

// Off, the route answers 404 as an unknown path does; on, it answers 404 from its end on.
func TestTheLegacyExchangeIsNotFoundWhenOffAndAfterItsEnd(t *testing.T) {
	off := newEnv(t)
	res := off.do(t, "POST", "/api/auth/legacy/exchange", `{"token": "x"}`)
	if res.Status != 404 || res.errorCode(t) != "not_found" {
		t.Fatalf("exchange while off: %d %s, want 404 not_found", res.Status, res.Body)
	}
	e := legacyEnv(t)
	e.legacyUser(t, "123", "legacy@example.com", fluxauth.UserTypeClient)
	tok := legacyToken(t, legacyJWTSecret, legacyClaims(123, e.Clock.Now(), 60*24*time.Hour))
	e.Clock.Advance(30*24*time.Hour - time.Second)
	before := e.exchange(t, tok)
	wantStatus(t, "exchange a second before the end", before, 200)
	e.Clock.Advance(time.Second)
	other := legacyToken(t, legacyJWTSecret, legacyClaims(123, e.Clock.Now(), time.Hour))
	if res := e.exchange(t, other); res.Status != 404 || res.errorCode(t) != "not_found" {
		t.Fatalf("exchange at its end: %d %s, want 404 not_found", res.Status, res.Body)
	}
}

// Legacy tokens are accepted by the exchange only: not as access tokens, even when fluxauth signs
// HS256 tokens for legacy services (with another secret, which configuration enforces).
func TestALegacyTokenIsNoAccessToken(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	e := newEnv(t, withClock(clock), withLegacy(clock), withConfig(func(c *config.Config) {
		c.JWTAlg, c.JWTSecret = "HS256", "the-shared-secret-of-legacy-services-32b"
		c.Account.CheckSessionOwner = true
	}))
	e.legacyUser(t, "123", "legacy@example.com", fluxauth.UserTypeClient)
	tok := legacyToken(t, legacyJWTSecret, legacyClaims(123, clock.Now(), time.Hour))
	for _, path := range []string{"/api/auth/me", "/api/auth/sessions"} {
		if res := e.do(t, "GET", path, nil, bearer(tok)...); res.Status != 401 || res.errorCode(t) != "invalid_token" {
			t.Fatalf("GET %s with a legacy token: %d %s, want 401 invalid_token", path, res.Status, res.Body)
		}
	}
	ar := e.mustExchange(t, tok)
	if res := e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.Status != 200 {
		t.Fatalf("/me with the exchanged HS256 access token: %d %s", res.Status, res.Body)
	}
}

// The exchange has its own per-IP limit.
func TestTheLegacyExchangeIsRateLimitedPerIP(t *testing.T) {
	e := legacyEnv(t, withConfig(func(c *config.Config) { c.Rules.LegacyIP = ratelimit.Limit{Rate: 2, Period: time.Minute} }))
	for i := range 3 {
		res := e.exchange(t, legacyToken(t, "guess", legacyClaims(i, e.Clock.Now(), time.Hour)), "X-Forwarded-For", "198.51.100.7")
		if want := map[bool]int{true: 401, false: 429}[i < 2]; res.Status != want {
			t.Fatalf("exchange %d from one IP: %d %s, want %d", i+1, res.Status, res.Body, want)
		}
	}
	res := e.exchange(t, legacyToken(t, "guess", legacyClaims(9, e.Clock.Now(), time.Hour)), "X-Forwarded-For", "198.51.100.8")
	wantStatus(t, "exchange from another IP", res, 401)
}

// Ten tabs (or app processes) behind a load balancer exchange one legacy token at once, on two
// instances sharing PostgreSQL: every one gets the same session, and it is exchanged once.
func TestParallelExchangesOfOneLegacyTokenOnTwoInstancesGetOneSession(t *testing.T) {
	a, b := twoInstances(t, func(c *envConfig) { withLegacy(c.clock)(c) })
	a.legacyUser(t, "123", "legacy@example.com", fluxauth.UserTypeClient)
	tok := legacyToken(t, legacyJWTSecret, legacyClaims(123, a.Clock.Now().Add(-time.Hour), 7*24*time.Hour))
	const n = 10
	results := make([]*response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		inst := []*env{a, b}[i%2]
		wg.Go(func() {
			results[i], errs[i] = inst.send("POST", "/api/auth/legacy/exchange", map[string]string{"token": tok})
		})
	}
	wg.Wait()
	var sid, refresh string
	for i, res := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		wantStatus(t, fmt.Sprintf("exchange %d", i), res, 200)
		var ar authResponse
		res.json(t, &ar)
		if i == 0 {
			sid, refresh = claimsOf(t, ar.AccessToken).SID, ar.RefreshToken
		}
		if claimsOf(t, ar.AccessToken).SID != sid || ar.RefreshToken != refresh {
			t.Fatalf("exchange %d got another session or refresh token than exchange 0", i)
		}
	}
	if evs := a.events(t, fluxauth.EventLegacyTokenExchanged); len(evs) != 1 {
		t.Fatalf("%d legacy_token_exchanged events, want 1", len(evs))
	}
	ar := a.mustRefresh(t, refresh)
	if sessions := b.sessions(t, ar.AccessToken); len(sessions) != 1 {
		t.Fatalf("%d sessions after ten exchanges of one token, want 1", len(sessions))
	}
}

// An exchanged token's record is kept while the token could still be presented, so a replay is
// known as one, and cleanup removes it only once the token is refused as expired anyway.
func TestTheRecordOfAnExchangedLegacyTokenIsCleanedUpOnceTheTokenHasExpired(t *testing.T) {
	e := legacyEnv(t)
	e.legacyUser(t, "123", "legacy@example.com", fluxauth.UserTypeClient)
	tok := legacyToken(t, legacyJWTSecret, legacyClaims(123, e.Clock.Now(), 24*time.Hour))
	e.mustExchange(t, tok)
	job := &cleanup.Job{Store: e.Store, TokenRetention: time.Hour, EventRetention: 24 * time.Hour, Batch: 100, Clock: e.Clock,
		Logger: slog.New(slog.DiscardHandler)}
	e.Clock.Advance(24*time.Hour - time.Minute)
	if _, err := job.Run(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if res := e.exchange(t, tok); res.Status != 401 || len(e.events(t, fluxauth.EventSuspiciousTokenUsage)) != 1 {
		t.Fatalf("a replay a minute before exp, after cleanup: %d %s, want 401 recorded as a replay", res.Status, res.Body)
	}
	e.Clock.Advance(3 * time.Hour)
	rep, err := job.Run(context.Background(), false)
	if err != nil || rep.IDTokenUses != 1 {
		t.Fatalf("cleanup after exp: %+v, %v; want the exchange's record deleted", rep, err)
	}
	if _, err := e.legacyUse(t, tok); !errors.Is(err, fluxauth.ErrNotFound) {
		t.Fatalf("the record after cleanup: %v", err)
	}
	res := e.exchange(t, tok)
	if res.Status != 401 || e.events(t, fluxauth.EventFailedLogin)[0].Metadata["detail"] != "expired" {
		t.Fatalf("the expired token after its record was cleaned up: %d %s, want 401, refused as expired", res.Status, res.Body)
	}
}
