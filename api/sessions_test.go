package api_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// sidOf reads the sid claim of an access token (the signature is checked by the server elsewhere).
func sidOf(tb testing.TB, access string) string {
	tb.Helper()
	return claimsOf(tb, access).SID
}

// accessClaims are the claims of an access token the tests read.
type accessClaims struct {
	Sub string `json:"sub"`
	SID string `json:"sid"`
	Exp int64  `json:"exp"`
	// AuthTime is auth_time: when the session's user last proved a credential.
	AuthTime int64 `json:"auth_time"`
}

// claimsOf reads an access token's claims without checking its signature.
func claimsOf(tb testing.TB, access string) accessClaims {
	tb.Helper()
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a JWT: %q", access)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var c accessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		tb.Fatal(err)
	}
	return c
}

func (e *env) refresh(tb testing.TB, rt string, headers ...string) *response {
	tb.Helper()
	return e.do(tb, "POST", "/api/auth/refresh", map[string]string{"refreshToken": rt}, headers...)
}

func (e *env) mustRefresh(tb testing.TB, rt string) *authResponse {
	tb.Helper()
	res := e.refresh(tb, rt)
	if res.Status != 200 {
		tb.Fatalf("refresh: %d %s", res.Status, res.Body)
	}
	var ar authResponse
	res.json(tb, &ar)
	return &ar
}

type sessionJSON struct {
	ID         string    `json:"id"`
	DeviceName string    `json:"deviceName"`
	IPAddress  string    `json:"ipAddress"`
	UserAgent  string    `json:"userAgent"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	Current    bool      `json:"current"`
}

func (e *env) sessions(tb testing.TB, access string) []sessionJSON {
	tb.Helper()
	res := e.do(tb, "GET", "/api/auth/sessions", nil, bearer(access)...)
	if res.Status != 200 {
		tb.Fatalf("sessions: %d %s", res.Status, res.Body)
	}
	var body struct {
		Sessions []sessionJSON `json:"sessions"`
	}
	res.json(tb, &body)
	return body.Sessions
}

// liveTokens counts the session's tokens that could still be refreshed: the chain must never fork.
func (e *env) liveTokens(tb testing.TB, userID string) int {
	tb.Helper()
	tips, err := e.Store.ActiveSessions(tb.Context(), userID, e.Clock.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return len(tips)
}

func TestRefreshRotatesAndKeepsTheSession(t *testing.T) {
	e := newEnv(t)
	first := e.signup(t, "rot@example.com")
	e.Clock.Advance(time.Minute)
	second := e.mustRefresh(t, first.RefreshToken)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	if second.Token != second.AccessToken || second.ExpiresIn != 900 || second.User.ID != first.User.ID {
		t.Fatalf("bad response %+v", second)
	}
	if sidOf(t, first.AccessToken) != sidOf(t, second.AccessToken) {
		t.Fatal("sid changed along the chain")
	}
	third := e.mustRefresh(t, second.RefreshToken)
	list := e.sessions(t, third.AccessToken)
	if len(list) != 1 || list[0].ID != sidOf(t, first.AccessToken) || !list[0].Current {
		t.Fatalf("sessions %+v", list)
	}
	if e.liveTokens(t, first.User.ID) != 1 {
		t.Fatal("more than one live token")
	}
}

func TestRefreshTokenIsStoredOnlyAsItsHash(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "hash@example.com")
	if len(ar.RefreshToken) != 87 { // version, session, 256-bit body and tag, base64url without padding
		t.Fatalf("refresh token length %d", len(ar.RefreshToken))
	}
	err := e.Store.Update(t.Context(), func(tx fluxauth.Tx) error {
		_, err := tx.RefreshTokenByHash(t.Context(), ar.RefreshToken)
		return err
	})
	if !errors.Is(err, fluxauth.ErrNotFound) {
		t.Fatalf("looking the raw token up as a stored hash: %v, want not found", err)
	}
	tips, _ := e.Store.ActiveSessions(t.Context(), ar.User.ID, e.Clock.Now())
	if len(tips) != 1 || tips[0].TokenHash == ar.RefreshToken || len(tips[0].TokenHash) != 64 {
		t.Fatalf("stored %+v", tips)
	}
}

func TestRefreshFailures(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "fail@example.com")
	for name, rt := range map[string]string{"garbled token": ar.RefreshToken[:40] + flipChar(ar.RefreshToken[40]) + ar.RefreshToken[41:], "empty token": ""} {
		t.Run(name, func(t *testing.T) {
			res := e.refresh(t, rt)
			if res.Status != 401 || res.errorCode(t) != "invalid_refresh_token" {
				t.Fatalf("got %d %s", res.Status, res.Body)
			}
		})
	}
	t.Run("unused refresh token past its lifetime is expired", func(t *testing.T) {
		e.Clock.Advance(168*time.Hour + time.Second)
		res := e.refresh(t, ar.RefreshToken)
		if res.Status != 401 || res.errorCode(t) != "refresh_token_expired" {
			t.Fatalf("got %d %s", res.Status, res.Body)
		}
	})
}

func TestRefreshExtendsLifetimeButNotPastSessionMaxAge(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "extend@example.com")
	start := e.Clock.Now()
	rt := ar.RefreshToken
	// Using the session every 6 days keeps it alive well past one refresh lifetime (7 days)...
	for i := 0; i < 4; i++ {
		e.Clock.Advance(144 * time.Hour)
		next := e.mustRefresh(t, rt)
		rt = next.RefreshToken
		list := e.sessions(t, next.AccessToken)
		want := e.Clock.Now().Add(168 * time.Hour)
		if limit := start.Add(720 * time.Hour); want.After(limit) {
			want = limit
		}
		if !list[0].ExpiresAt.Equal(want) {
			t.Fatalf("refresh %d: expiresAt %s, want %s", i, list[0].ExpiresAt, want)
		}
		if !list[0].LastUsedAt.Equal(e.Clock.Now()) || !list[0].CreatedAt.Equal(start) {
			t.Fatalf("refresh %d: lastUsedAt %s createdAt %s, want %s and the sign-in %s", i, list[0].LastUsedAt, list[0].CreatedAt, e.Clock.Now(), start)
		}
	}
	// ...but never past 30 days from sign-in.
	e.Clock.Advance(144 * time.Hour) // day 30
	res := e.refresh(t, rt)
	if res.Status != 401 || res.errorCode(t) != "refresh_token_expired" {
		t.Fatalf("after the session max age: %d %s", res.Status, res.Body)
	}
}

func TestSpentTokenWithinGraceContinuesTheSingleChain(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "grace@example.com")
	tabA := e.mustRefresh(t, ar.RefreshToken)
	tabA = e.mustRefresh(t, tabA.RefreshToken) // tab A moves the chain on twice
	tabA = e.mustRefresh(t, tabA.RefreshToken)
	e.Clock.Advance(5 * time.Second)
	tabB := e.mustRefresh(t, ar.RefreshToken) // the second tab still holds the first token
	if tabB.RefreshToken != tabA.RefreshToken {
		t.Fatal("a spent token within the grace window did not get the session's live token")
	}
	if sidOf(t, tabA.AccessToken) != sidOf(t, tabB.AccessToken) {
		t.Fatal("grace refresh forked a new session")
	}
	if e.liveTokens(t, ar.User.ID) != 1 {
		t.Fatal("grace refresh forked a second live chain")
	}
	// Tab B's token carries the chain on; the race recorded nothing suspicious.
	e.mustRefresh(t, tabB.RefreshToken)
	if n := len(e.events(t, fluxauth.EventSessionHijackAttempt)); n != 0 {
		t.Fatalf("%d hijack events for a benign race", n)
	}
}

func TestSpentTokenWhoseSuccessorWasNeverUsedIsALostResponse(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "lost@example.com")
	lost := e.mustRefresh(t, ar.RefreshToken) // the response never reached the phone
	e.Clock.Advance(3 * 24 * time.Hour)
	again := e.mustRefresh(t, ar.RefreshToken)
	if again.RefreshToken != lost.RefreshToken {
		t.Fatal("the lost-response retry did not return the same successor")
	}
	if sidOf(t, again.AccessToken) != sidOf(t, ar.AccessToken) {
		t.Fatal("lost-response retry started another session")
	}
	if e.liveTokens(t, ar.User.ID) != 1 {
		t.Fatal("lost-response retry forked the chain")
	}
	e.mustRefresh(t, again.RefreshToken)
}

func TestThiefAndVictimAlternatingOverHTTPAreCaught(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "alternate@example.com")
	victim := e.mustRefresh(t, ar.RefreshToken).RefreshToken
	thief := ar.RefreshToken // from a logged request body
	e.Clock.Advance(time.Minute)
	thief = e.mustRefresh(t, thief).RefreshToken // looks like a lost response: the same successor
	e.Clock.Advance(time.Minute)
	victim = e.mustRefresh(t, victim).RefreshToken
	e.Clock.Advance(time.Minute)
	if res := e.refresh(t, thief); res.Status != 401 || res.errorCode(t) != "refresh_token_reused" {
		t.Fatalf("second round: %d %s", res.Status, res.Body)
	}
	if res := e.refresh(t, victim); res.Status != 401 || res.errorCode(t) != "refresh_token_revoked" {
		t.Fatalf("the session survived: %d %s", res.Status, res.Body)
	}
}

func TestReuseAfterGraceRevokesTheSession(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "stolen@example.com")
	second := e.mustRefresh(t, ar.RefreshToken)
	third := e.mustRefresh(t, second.RefreshToken) // the successor was used
	e.Clock.Advance(11 * time.Second)
	res := e.refresh(t, ar.RefreshToken)
	if res.Status != 401 || res.errorCode(t) != "refresh_token_reused" {
		t.Fatalf("reuse: %d %s", res.Status, res.Body)
	}
	res = e.refresh(t, third.RefreshToken)
	if res.Status != 401 || res.errorCode(t) != "refresh_token_revoked" {
		t.Fatalf("live token after reuse: %d %s", res.Status, res.Body)
	}
	res = e.do(t, "GET", "/api/auth/me", nil, bearer(third.AccessToken)...)
	if res.Status != 401 || res.errorCode(t) != "session_revoked" {
		t.Fatalf("access token after reuse: %d %s", res.Status, res.Body)
	}
	hijack := e.events(t, fluxauth.EventSessionHijackAttempt)
	revoked := e.events(t, fluxauth.EventTokenRevoked)
	if len(hijack) != 1 || hijack[0].Severity != "critical" || len(revoked) != 1 || revoked[0].Metadata["reason"] != "refresh_token_reused" {
		t.Fatalf("events: hijack %+v revoked %+v", hijack, revoked)
	}
}

func TestSessionsListAndRevoke(t *testing.T) {
	e := newEnv(t)
	laptop := e.signup(t, "multi@example.com", "deviceName", "Work laptop")
	e.Clock.Advance(time.Minute)
	phoneRes := e.do(t, "POST", "/api/auth/login", map[string]string{"email": "multi@example.com", "password": "correct horse battery"},
		"User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
		"X-Device-Fingerprint", "fp-phone")
	var phone authResponse
	phoneRes.json(t, &phone)

	list := e.sessions(t, laptop.AccessToken)
	if len(list) != 2 {
		t.Fatalf("sessions %+v", list)
	}
	if list[0].DeviceName != "Safari on iOS" || list[0].Current || list[1].DeviceName != "Work laptop" || !list[1].Current {
		t.Fatalf("order or fields wrong: %+v", list)
	}
	if list[0].IPAddress != "127.0.0.1" || list[0].UserAgent == "" || list[0].CreatedAt.IsZero() || list[0].ExpiresAt.IsZero() {
		t.Fatalf("device tracking missing: %+v", list[0])
	}
	raw := e.do(t, "GET", "/api/auth/sessions", nil, bearer(laptop.AccessToken)...)
	for _, secret := range []string{laptop.RefreshToken, phone.RefreshToken, "hash", "fingerprint"} {
		if strings.Contains(string(raw.Body), secret) {
			t.Fatalf("sessions list exposes %q", secret)
		}
	}

	other := e.signup(t, "other@example.com")
	if res := e.do(t, "DELETE", "/api/auth/sessions/"+list[0].ID, nil, bearer(other.AccessToken)...); res.Status != 404 || res.errorCode(t) != "not_found" {
		t.Fatalf("another user's session: %d %s", res.Status, res.Body)
	}
	if res := e.do(t, "DELETE", "/api/auth/sessions/not-a-uuid", nil, bearer(laptop.AccessToken)...); res.Status != 404 {
		t.Fatalf("malformed id: %d %s", res.Status, res.Body)
	}
	if res := e.do(t, "DELETE", "/api/auth/sessions/"+list[0].ID, nil, bearer(laptop.AccessToken)...); res.Status != 204 {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	if res := e.do(t, "GET", "/api/auth/me", nil, bearer(phone.AccessToken)...); res.Status != 401 || res.errorCode(t) != "session_revoked" {
		t.Fatalf("revoked session's access token: %d %s", res.Status, res.Body)
	}
	if res := e.refresh(t, phone.RefreshToken); res.Status != 401 || res.errorCode(t) != "refresh_token_revoked" {
		t.Fatalf("revoked session's refresh token: %d %s", res.Status, res.Body)
	}
	if len(e.sessions(t, laptop.AccessToken)) != 1 {
		t.Fatal("revoked session still listed")
	}
	if res := e.do(t, "DELETE", "/api/auth/sessions/"+list[0].ID, nil, bearer(laptop.AccessToken)...); res.Status != 404 {
		t.Fatalf("revoking twice: %d", res.Status)
	}
}

func TestLogoutAndLogoutAll(t *testing.T) {
	e := newEnv(t)
	a := e.signup(t, "out@example.com")
	var b, c authResponse
	e.do(t, "POST", "/api/auth/login", map[string]string{"email": "out@example.com", "password": "correct horse battery"}).json(t, &b)
	e.do(t, "POST", "/api/auth/login", map[string]string{"email": "out@example.com", "password": "correct horse battery"}).json(t, &c)

	if res := e.do(t, "POST", "/api/auth/logout", nil, bearer(a.AccessToken)...); res.Status != 204 {
		t.Fatalf("logout %d %s", res.Status, res.Body)
	}
	if res := e.do(t, "GET", "/api/auth/me", nil, bearer(a.AccessToken)...); res.errorCode(t) != "session_revoked" {
		t.Fatalf("after logout: %s", res.Body)
	}
	if res := e.do(t, "GET", "/api/auth/me", nil, bearer(b.AccessToken)...); res.Status != 200 {
		t.Fatal("logout ended another session")
	}
	if res := e.do(t, "POST", "/api/auth/logout-all", nil, bearer(b.AccessToken)...); res.Status != 204 {
		t.Fatalf("logout-all %d %s", res.Status, res.Body)
	}
	for _, tok := range []string{b.AccessToken, c.AccessToken} {
		if res := e.do(t, "GET", "/api/auth/me", nil, bearer(tok)...); res.errorCode(t) != "session_revoked" {
			t.Fatalf("after logout-all: %s", res.Body)
		}
	}
	if n := len(e.events(t, fluxauth.EventTokenRevoked)); n != 3 {
		t.Fatalf("%d token_revoked events, want 3", n)
	}
}

// TestOriginalManualTestPlan walks the plan the FluxStudio team used by hand: signup, refresh,
// list sessions, revoke.
func TestOriginalManualTestPlan(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "plan@example.com", "deviceName", "Plan device")
	next := e.mustRefresh(t, ar.RefreshToken)
	list := e.sessions(t, next.AccessToken)
	if len(list) != 1 || list[0].DeviceName != "Plan device" {
		t.Fatalf("sessions %+v", list)
	}
	if res := e.do(t, "DELETE", "/api/auth/sessions/"+list[0].ID, nil, bearer(next.AccessToken)...); res.Status != http.StatusNoContent {
		t.Fatalf("revoke %d", res.Status)
	}
	if res := e.refresh(t, next.RefreshToken); res.errorCode(t) != "refresh_token_revoked" {
		t.Fatalf("refresh after revoke: %s", res.Body)
	}
}

// parallelRefresh presents one refresh token from n goroutines at once and checks that every request
// got a clean answer and that exactly one live chain remains.
func parallelRefresh(t *testing.T, envs []*env, n int) {
	t.Helper()
	first := envs[0].signup(t, fmt.Sprintf("race%d@example.com", time.Now().UnixNano()))
	var wg sync.WaitGroup
	statuses := make([]*response, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := envs[i%len(envs)].send("POST", "/api/auth/refresh", map[string]string{"refreshToken": first.RefreshToken})
			if err != nil {
				t.Errorf("request %d: %v", i, err) // not Fatal: this runs off the test goroutine
				return
			}
			statuses[i] = res
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, res := range statuses {
		if res.Status != 200 {
			t.Fatalf("request %d: %d %s", i, res.Status, res.Body)
		}
	}
	if live := envs[0].liveTokens(t, first.User.ID); live != 1 {
		t.Fatalf("%d live tokens after %d parallel refreshes, want 1", live, n)
	}
	got := make([]authResponse, n)
	for i, res := range statuses {
		res.json(t, &got[i])
		if got[i].RefreshToken != got[0].RefreshToken {
			t.Fatal("racing refreshes of one token got different refresh tokens")
		}
	}
	if len(envs[0].sessions(t, got[n-1].AccessToken)) != 1 {
		t.Fatal("parallel refreshes made more than one session")
	}
	// Every racer holds the live token, so any of them still refreshes after the grace window.
	envs[0].Clock.Advance(11 * time.Second)
	envs[len(envs)-1].mustRefresh(t, got[0].RefreshToken)
}

func TestParallelRefreshesLeaveOneChainOnSQLite(t *testing.T) {
	parallelRefresh(t, []*env{newEnv(t)}, 20)
}
