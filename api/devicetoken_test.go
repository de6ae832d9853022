package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/config"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
	"github.com/fluxstudio/fluxauth/sqlite/sqlitetest"
	"github.com/fluxstudio/fluxauth/token"
)

// onEachStore runs fn against a server on SQLite and one on PostgreSQL, each with the default
// lockout (10 failures lock an address for 15 minutes) and the fake clock.
func onEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, s := range []struct {
		name string
		open func(tb testing.TB) fluxauth.Backend
	}{
		{"sqlite", func(tb testing.TB) fluxauth.Backend { return sqlitetest.MustOpenDB(tb) }},
		{"postgres", func(tb testing.TB) fluxauth.Backend { return postgrestest.MustOpenDB(tb) }},
	} {
		t.Run(s.name, func(t *testing.T) { fn(t, newEnv(t, withStore(s.open(t)))) })
	}
}

const ownerPassword = "correct horse battery"

// loginWith sends a password login from ip, carrying deviceToken unless it is "".
func (e *env) loginWith(tb testing.TB, email, password, deviceToken, ip string) *response {
	tb.Helper()
	body := map[string]string{"email": email, "password": password}
	if deviceToken != "" {
		body["deviceToken"] = deviceToken
	}
	return e.do(tb, "POST", "/api/auth/login", body, "X-Forwarded-For", ip)
}

// wantLogin fails tb unless res is a successful login, and returns it.
func wantLogin(tb testing.TB, what string, res *response) *authResponse {
	tb.Helper()
	if res.Status != http.StatusOK {
		tb.Fatalf("%s: %d %s, want 200", what, res.Status, res.Body)
	}
	var ar authResponse
	res.json(tb, &ar)
	if ar.DeviceToken == "" {
		tb.Fatalf("%s: no deviceToken in %s", what, res.Body)
	}
	return &ar
}

func wantStatus(tb testing.TB, what string, res *response, status int) {
	tb.Helper()
	if res.Status != status {
		tb.Fatalf("%s: %d %s, want %d", what, res.Status, res.Body, status)
	}
}

// lockAccount has an attacker lock email with the lockout's whole budget of wrong guesses, one
// from each of many addresses, and checks the next plain login is refused.
func (e *env) lockAccount(tb testing.TB, email string) {
	tb.Helper()
	burst := config.Default().Rules.Lockout.Burst
	for i := range burst {
		wantStatus(tb, "attacker's guess "+strconv.Itoa(i+1), e.loginWith(tb, email, "guess "+strconv.Itoa(i), "", "198.51.100."+strconv.Itoa(i+1)), 401)
	}
	wantStatus(tb, "a plain login once the attacker is done", e.loginWith(tb, email, "one more guess", "", "203.0.113.66"), 429)
}

// deviceNotes counts what the device tokens of login events of typ did (their "deviceToken"
// metadata; "" for logins that carried none).
func (e *env) deviceNotes(tb testing.TB, typ string) map[string]int {
	tb.Helper()
	notes := map[string]int{}
	for _, ev := range e.events(tb, typ) {
		note, _ := ev.Metadata["deviceToken"].(string)
		notes[note]++
	}
	return notes
}

// wantNothingLeaked fails tb if any of secrets appears in the server's logs or in any event.
func (e *env) wantNothingLeaked(tb testing.TB, secrets ...string) {
	tb.Helper()
	evs := e.events(tb, "")
	dump, err := json.Marshal(evs)
	if err != nil {
		tb.Fatal(err)
	}
	logs := e.Logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) || strings.Contains(string(dump), s) {
			tb.Fatalf("%q appears in the logs or the events", s)
		}
	}
}

// The attack the device tokens answer: ten wrong guesses from ten addresses lock the account for
// everyone, but the owner's device, with its token, still signs in, and signing in through it
// leaves the lockout standing.
func TestOwnersDeviceSignsInWhileAnAttackerHoldsTheAccountLocked(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		signup := e.signup(t, "owner@example.com")
		if signup.DeviceToken == "" {
			t.Fatal("signup returned no deviceToken")
		}
		laptop := wantLogin(t, "the owner's first login on the laptop", e.loginWith(t, "owner@example.com", ownerPassword, "", "192.0.2.10")).DeviceToken
		e.lockAccount(t, "owner@example.com")

		for _, dev := range []struct{ name, token string }{{"the phone signed up", signup.DeviceToken}, {"the laptop", laptop}} {
			ar := wantLogin(t, dev.name, e.loginWith(t, "owner@example.com", ownerPassword, dev.token, "192.0.2.10"))
			if ar.DeviceToken != dev.token {
				t.Fatalf("%s: the login through a device token returned another one", dev.name)
			}
			if res := e.do(t, "GET", "/api/auth/me", nil, bearer(ar.AccessToken)...); res.Status != 200 {
				t.Fatalf("%s: the session it opened: %d", dev.name, res.Status)
			}
		}
		// The owner's successes cleared nothing: a device without a token, the owner's own
		// included, is still locked out.
		wantStatus(t, "a new device with the right password", e.loginWith(t, "owner@example.com", ownerPassword, "", "192.0.2.10"), 429)
		wantStatus(t, "the attacker", e.loginWith(t, "owner@example.com", "guess again", "", "198.51.100.200"), 429)

		if notes := e.deviceNotes(t, fluxauth.EventLoginSuccess); notes["used"] != 2 {
			t.Fatalf("login_success device notes %v, want 2 used", notes)
		}
		e.wantNothingLeaked(t, signup.DeviceToken, laptop)
	})
}

// Five wrong passwords in a row through one device token end it for good: then even the right
// password through it is a plain login, refused while the account is locked. Its failures never
// touched the account's lockout, and another device's token is unaffected.
func TestDeviceTokenIsDeadAfterFiveFailuresThroughIt(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		stolen := e.signup(t, "owner@example.com").DeviceToken
		laptop := wantLogin(t, "the laptop's login", e.loginWith(t, "owner@example.com", ownerPassword, "", "192.0.2.10")).DeviceToken
		for i := range 5 {
			wantStatus(t, "guess through the stolen token", e.loginWith(t, "owner@example.com", "guess "+strconv.Itoa(i), stolen, "203.0.113.5"), 401)
		}
		// The lockout's whole budget is still there: the attacker needs all ten guesses to lock it.
		e.lockAccount(t, "owner@example.com")
		wantStatus(t, "the right password through the dead token", e.loginWith(t, "owner@example.com", ownerPassword, stolen, "192.0.2.11"), 429)
		wantLogin(t, "the laptop", e.loginWith(t, "owner@example.com", ownerPassword, laptop, "192.0.2.10"))

		// Long after the lockout has passed, the dead token is still ignored: the right password
		// through it signs in as a plain login, and a new token replaces it.
		e.Clock.Advance(24 * time.Hour)
		ar := wantLogin(t, "the right password through the dead token a day later", e.loginWith(t, "owner@example.com", ownerPassword, stolen, "192.0.2.11"))
		if ar.DeviceToken == stolen {
			t.Fatal("the dead token was handed back as if alive")
		}
		notes := e.deviceNotes(t, fluxauth.EventFailedLogin)
		if notes["counted"] != 4 || notes["ended"] != 1 {
			t.Fatalf("failed_login device notes %v, want 4 counted and 1 ended", notes)
		}
		if n := e.deviceNotes(t, fluxauth.EventLoginSuccess)["ignored"]; n != 1 {
			t.Fatalf("%d successful logins ignored the dead token, want 1", n)
		}
		e.wantNothingLeaked(t, stolen, laptop, ar.DeviceToken)
	})
}

// A success through a device token resets its own count: four failures, a success, four more and
// a success never reach five, so the token keeps working through the lockout.
func TestSuccessThroughADeviceTokenResetsItsOwnBudget(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		phone := e.signup(t, "owner@example.com").DeviceToken
		e.lockAccount(t, "owner@example.com")
		for round := range 3 {
			for i := range 4 {
				wantStatus(t, "a typo through the phone's token", e.loginWith(t, "owner@example.com", "typo "+strconv.Itoa(i), phone, "192.0.2.10"), 401)
			}
			wantLogin(t, "the owner after round "+strconv.Itoa(round+1)+" of typos", e.loginWith(t, "owner@example.com", ownerPassword, phone, "192.0.2.10"))
		}
		if notes := e.deviceNotes(t, fluxauth.EventFailedLogin); notes["counted"] != 12 || notes["ended"] != 0 {
			t.Fatalf("failed_login device notes %v, want 12 counted on the token and none ending it", notes)
		}
	})
}

// Tokens that are not a live token of the account logged into are ignored, and the login is a
// plain one: refused while the account is locked. Each case is first shown to work when it should.
func TestDeviceTokensThatAreNotTheAccountsLiveTokensAreIgnored(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		signup := e.signup(t, "owner@example.com")
		other := e.signup(t, "other@example.com").DeviceToken
		phone := wantLogin(t, "phone", e.loginWith(t, "owner@example.com", ownerPassword, "", "192.0.2.10")).DeviceToken
		laptop := wantLogin(t, "laptop", e.loginWith(t, "owner@example.com", ownerPassword, "", "192.0.2.11")).DeviceToken
		e.lockAccount(t, "owner@example.com")

		u, err := e.Store.UserByEmail(ctx, "owner@example.com")
		if err != nil {
			t.Fatal(err)
		}
		foreignKeys, err := token.GenerateKeySet(e.Clock, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A forgery with every right part but the key: the owner's account and current password,
		// signed by another key file.
		forged, err := foreignKeys.DeviceMinter().Mint("0190f6a2-7b3c-7d4e-8f00-aabbccddeeff", u.ID, u.PasswordHash)
		if err != nil {
			t.Fatal(err)
		}
		altered := phone[:len(phone)-1] + flipChar(phone[len(phone)-1])
		for name, tok := range map[string]string{
			"forged under another key":  forged,
			"altered in its last digit": altered,
			"another account's":         other,
			"not a token at all":        strings.Repeat("x", 66),
			"too long for one":          phone + strings.Repeat("A", 100),
		} {
			wantStatus(t, name, e.loginWith(t, "owner@example.com", ownerPassword, tok, "192.0.2.10"), 429)
		}

		// Expiry: the laptop signs in a minute before its token expires, which extends it; the
		// phone's, unused, and the signup's expire.
		e.Clock.Advance(config.Default().Account.DeviceTokenTTL - time.Minute)
		e.lockAccount(t, "owner@example.com")
		wantLogin(t, "the laptop just before its token expires", e.loginWith(t, "owner@example.com", ownerPassword, laptop, "192.0.2.11"))
		e.Clock.Advance(2 * time.Minute)
		wantStatus(t, "the phone's expired token", e.loginWith(t, "owner@example.com", ownerPassword, phone, "192.0.2.10"), 429)
		wantStatus(t, "the signup's expired token", e.loginWith(t, "owner@example.com", ownerPassword, signup.DeviceToken, "192.0.2.10"), 429)
		ar := wantLogin(t, "the laptop, its token extended", e.loginWith(t, "owner@example.com", ownerPassword, laptop, "192.0.2.11"))

		// Log out-all ends the laptop's token with its sessions.
		wantStatus(t, "logout-all", e.do(t, "POST", "/api/auth/logout-all", nil, bearer(ar.AccessToken)...), 204)
		wantStatus(t, "the laptop after log out-all", e.loginWith(t, "owner@example.com", ownerPassword, laptop, "192.0.2.11"), 429)

		if notes := e.deviceNotes(t, fluxauth.EventLoginSuccess); notes["used"] != 2 || notes["ignored"] != 0 {
			t.Fatalf("login_success device notes %v, want the laptop's 2 used", notes)
		}
		e.wantNothingLeaked(t, phone, laptop, other, forged, signup.DeviceToken)
	})
}

// A password change retires every device token minted before it (their HMAC covers the password
// hash); the next password sign-in hands out one bound to the new password.
func TestDeviceTokensFromBeforeAPasswordChangeAreIgnored(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ar := e.signup(t, "owner@example.com")
		old := wantLogin(t, "login", e.loginWith(t, "owner@example.com", ownerPassword, "", "192.0.2.10")).DeviceToken
		const newPassword = "a brand new passphrase"
		hash, err := e.Accounts.Passwords.Hash(ctx, newPassword)
		if err != nil {
			t.Fatal(err)
		}
		// As a password change or reset does.
		if err := e.Store.SetPasswordHash(ctx, ar.User.ID, hash, e.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.lockAccount(t, "owner@example.com")
		wantStatus(t, "the token from before the change", e.loginWith(t, "owner@example.com", newPassword, old, "192.0.2.10"), 429)
		wantStatus(t, "the signup's token", e.loginWith(t, "owner@example.com", newPassword, ar.DeviceToken, "192.0.2.10"), 429)

		e.Clock.Advance(24 * time.Hour) // the lockout passes
		fresh := wantLogin(t, "a plain login with the new password", e.loginWith(t, "owner@example.com", newPassword, old, "192.0.2.10")).DeviceToken
		e.lockAccount(t, "owner@example.com")
		wantLogin(t, "the token minted after the change", e.loginWith(t, "owner@example.com", newPassword, fresh, "192.0.2.10"))
	})
}

// A legacy bcrypt account is rehashed by its first login; the device token that login returns is
// bound to the new hash, so it works at once.
func TestTheLoginThatRehashesReturnsATokenForTheNewHash(t *testing.T) {
	e := newEnv(t)
	ar := e.signup(t, "legacy@example.com")
	if err := e.Store.SetPasswordHash(t.Context(), ar.User.ID, bcryptHash(t, ownerPassword), e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	tok := wantLogin(t, "the rehashing login", e.loginWith(t, "legacy@example.com", ownerPassword, "", "192.0.2.10")).DeviceToken
	e.lockAccount(t, "legacy@example.com")
	wantLogin(t, "the token of the rehashing login", e.loginWith(t, "legacy@example.com", ownerPassword, tok, "192.0.2.10"))
}

// Fifty wrong guesses at once through one device token, from fifty addresses: the token's budget
// is taken before each password is checked, so exactly five are counted on it; the other 45 are
// plain logins, of which the lockout lets its ten through.
func TestParallelWrongGuessesThroughOneDeviceTokenGetFiveTries(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		stolen := e.signup(t, "target@example.com").DeviceToken
		count := parallelGuesses(t, []*env{e}, "target@example.com", stolen, 50)
		if count[401] != 15 || count[429] != 35 {
			t.Fatalf("statuses %v: want 5 checked through the token, 10 through the lockout, 35 locked out", count)
		}
		notes := e.deviceNotes(t, fluxauth.EventFailedLogin)
		// The 35 the lockout refused are failed logins too (reason locked_out), their token ignored.
		if notes["counted"]+notes["ended"] != 5 || notes["ended"] != 1 || notes["ignored"] != 10+35 {
			t.Fatalf("failed_login device notes %v: want 5 on the token (the last ending it), 10 plain, 35 locked out", notes)
		}
		wantStatus(t, "the right password through the spent token", e.loginWith(t, "target@example.com", ownerPassword, stolen, "192.0.2.10"), 429)
	})
}

// The budget is in the database, so two instances behind a load balancer share it: fifty guesses
// split between them still get five tries through the token.
func TestParallelWrongGuessesThroughOneDeviceTokenAcrossTwoInstances(t *testing.T) {
	a, b := twoInstances(t)
	stolen := a.signup(t, "target@example.com").DeviceToken
	parallelGuesses(t, []*env{a, b}, "target@example.com", stolen, 50)
	a.events(t, "") // writes a's queue; b's notes then read both instances' events from the one audit log
	notes := b.deviceNotes(t, fluxauth.EventFailedLogin)
	if notes["counted"]+notes["ended"] != 5 || notes["ended"] != 1 {
		t.Fatalf("failed_login device notes %v across two instances: want 5 on the token, the last ending it", notes)
	}
	// Each instance's own lockout (no Redis here) has taken its share of the 45 plain guesses.
	for _, e := range []*env{a, b} {
		wantStatus(t, "the right password through the spent token", e.loginWith(t, "target@example.com", ownerPassword, stolen, "192.0.2.10"), 429)
	}
}

// parallelGuesses sends n wrong passwords through deviceToken at once, spread over the instances,
// each from its own address, and counts the answers by status.
func parallelGuesses(t *testing.T, instances []*env, email, deviceToken string, n int) map[int]int {
	t.Helper()
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		e := instances[i%len(instances)]
		wg.Go(func() {
			res, err := e.send("POST", "/api/auth/login",
				map[string]string{"email": email, "password": "guess " + strconv.Itoa(i), "deviceToken": deviceToken},
				"X-Forwarded-For", "198.51.100."+strconv.Itoa(i+1))
			if err != nil {
				t.Errorf("guess %d: %v", i, err) // not Fatal: this runs off the test goroutine
				return
			}
			statuses <- res.Status
		})
	}
	wg.Wait()
	close(statuses)
	if t.Failed() {
		t.FailNow()
	}
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	return count
}

// Neither the device tokens nor the secret they are made with (the key file's refresh secret, and
// the key derived from it) ever reach the logs or the audit log, whatever happens to the tokens.
func TestDeviceTokensAndTheirKeyNeverReachLogsOrEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	keys, err := token.LoadOrCreateKeyFile(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withKeys(keys))
	signup := e.signup(t, "owner@example.com")
	tok := wantLogin(t, "login", e.loginWith(t, "owner@example.com", ownerPassword, "", "192.0.2.10")).DeviceToken
	for i := range 5 {
		e.loginWith(t, "owner@example.com", "guess "+strconv.Itoa(i), signup.DeviceToken, "203.0.113.5")
	}
	e.lockAccount(t, "owner@example.com")
	ar := wantLogin(t, "through the token", e.loginWith(t, "owner@example.com", ownerPassword, tok, "192.0.2.10"))
	e.do(t, "POST", "/api/auth/logout-all", nil, bearer(ar.AccessToken)...)
	e.loginWith(t, "owner@example.com", ownerPassword, tok, "192.0.2.10")

	var file struct {
		RefreshSecret string `json:"refreshSecret"`
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &file); err != nil || file.RefreshSecret == "" {
		t.Fatalf("key file without a refresh secret: %v", err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(file.RefreshSecret)
	if err != nil {
		t.Fatal(err)
	}
	kdf := hmac.New(sha256.New, secret)
	kdf.Write([]byte("fluxauth device-token key"))
	key := kdf.Sum(nil)
	leaks := []string{signup.DeviceToken, tok}
	for _, b := range [][]byte{secret, key} {
		leaks = append(leaks, base64.RawURLEncoding.EncodeToString(b), base64.StdEncoding.EncodeToString(b), hex.EncodeToString(b))
	}
	e.wantNothingLeaked(t, leaks...)
	if !bytes.Contains([]byte(e.Logs.String()), []byte("/api/auth/login")) {
		t.Fatal("the logs hold no login requests: the check above looked at nothing")
	}
}

// A takeover ends the account's device tokens, as it removes every other credential: a token the
// attacker got from their own password sign-in exempts nobody from the lockout afterwards. Their
// end does not rest on the removed hash alone (tokens minted over it no longer verify anyway): even
// should the account get that very hash back, the tokens stay dead.
func TestTakeoverEndsTheAccountsDeviceTokens(t *testing.T) {
	for _, s := range []struct {
		name string
		open func(tb testing.TB) fluxauth.Backend
	}{
		{"sqlite", func(tb testing.TB) fluxauth.Backend { return sqlitetest.MustOpenDB(tb) }},
		{"postgres", func(tb testing.TB) fluxauth.Backend { return postgrestest.MustOpenDB(tb) }},
	} {
		t.Run(s.name, func(t *testing.T) {
			p := newProviderEnv(t, withStore(s.open(t)))
			ctx := t.Context()
			const attackerPassword = "attacker's own password"
			attacker := p.signup(t, "victim@example.com", "password", attackerPassword)
			tok := wantLogin(t, "the attacker's login", p.loginWith(t, "victim@example.com", attackerPassword, "", "198.51.100.7")).DeviceToken
			before, err := p.Store.UserByID(ctx, attacker.User.ID)
			if err != nil {
				t.Fatal(err)
			}
			p.lockAccount(t, "victim@example.com")
			wantLogin(t, "the attacker's device token before the takeover", p.loginWith(t, "victim@example.com", attackerPassword, tok, "198.51.100.7"))

			if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.providerToken(t, "victim-google", "victim@example.com", true)}); res.Status != http.StatusOK {
				t.Fatalf("the owner's Google sign-in: %d %s", res.Status, res.Body)
			}
			if claimed := p.only(t, fluxauth.EventAccountClaimed); claimed.Metadata["deviceTokensRevoked"] != float64(2) {
				t.Fatalf("account_claimed %+v, want the signup's and the login's device tokens revoked", claimed)
			}
			for _, dt := range []struct{ what, token string }{{"the login's token", tok}, {"the signup's token", attacker.DeviceToken}} {
				wantStatus(t, dt.what+" after the takeover", p.loginWith(t, "victim@example.com", attackerPassword, dt.token, "198.51.100.7"), 429)
			}
			// The account gets the attacker's hash back, so the tokens' HMAC verifies again: only
			// their revocation keeps them from exempting the attacker.
			if err := p.Store.SetPasswordHash(ctx, before.ID, before.PasswordHash, p.Clock.Now()); err != nil {
				t.Fatal(err)
			}
			for _, dt := range []struct{ what, token string }{{"the login's token", tok}, {"the signup's token", attacker.DeviceToken}} {
				wantStatus(t, dt.what+" with the old hash back", p.loginWith(t, "victim@example.com", attackerPassword, dt.token, "198.51.100.7"), 429)
			}
		})
	}
}
