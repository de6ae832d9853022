package password

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

func TestVerifyAcceptsArgon2iAndAlwaysAsksForARehash(t *testing.T) {
	const pw = "correct horse battery staple"
	h := newHasher(t, fastParams, 1)
	salt := []byte("0123456789abcdef")
	// A known answer made here with argon2.Key (Argon2i), at the hasher's own parameters: even
	// those are rehashed, to argon2id.
	made := "$argon2i$v=19$m=64,t=1,p=1$" + b64.EncodeToString(salt) + "$" +
		b64.EncodeToString(argon2.Key([]byte(pw), salt, 1, 64, 1, 32))
	for _, tc := range []struct{ name, encoded, pw string }{
		{"made with argon2.Key", made, pw},
		// From the README of the reference implementation (github.com/P-H-C/phc-winner-argon2):
		// echo -n "password" | ./argon2 somesalt -t 2 -m 16 -p 4 -l 24
		{"reference implementation's example", "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, needsRehash := mustVerify(t, h, tc.encoded, tc.pw)
			if !ok || !needsRehash {
				t.Fatalf("Verify(argon2i, right password) = %v, %v; want true, true", ok, needsRehash)
			}
			if ok, needsRehash := mustVerify(t, h, tc.encoded, tc.pw+"x"); ok || needsRehash {
				t.Fatalf("Verify(argon2i, wrong password) = %v, %v; want false, false", ok, needsRehash)
			}
			// The same key read as argon2id is another hash: the variant is not ignored.
			asID := "$argon2id$" + strings.TrimPrefix(tc.encoded, "$argon2i$")
			if ok, _ := mustVerify(t, h, asID, tc.pw); ok {
				t.Fatal("an argon2i key verified as argon2id")
			}
		})
	}
}

func TestParamsKey(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	if err != nil {
		t.Fatal(err)
	}
	salt, key := b64.EncodeToString(make([]byte, 16)), b64.EncodeToString(make([]byte, 32))
	for hash, want := range map[string]string{
		string(bc):              "$2a$05$",
		"$2b$" + string(bc[4:]): "$2b$05$",
		"$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$" + key: "$argon2id$v=19$m=65536,t=3,p=4$",
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key:     "$argon2i$v=19$m=64,t=1,p=1$",
		"":              "",
		string(bc[:59]): "",
		"$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key: "",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt:            "",
	} {
		if got := ParamsKey(hash); got != want {
			t.Errorf("ParamsKey(%.30q…) = %q, want %q", hash, got, want)
		}
	}
}

// countComputations counts the computations h runs from now on.
func countComputations(h *Hasher) *atomic.Int32 {
	n := new(atomic.Int32)
	h.testHook = func(e poolEvent) {
		if e == eventStarted {
			n.Add(1)
		}
	}
	return n
}

func TestCalibrateMeasuresEachParameterSetThreeTimesAndKeepsTheSlowest(t *testing.T) {
	h := newHasher(t, fastParams, 1)
	if h.Floor() != 0 {
		t.Fatalf("Floor before calibration = %v, want 0", h.Floor())
	}
	n := countComputations(h)
	keys := []string{
		"$2b$04$",                      // bcrypt cost 4
		"$2b$04$",                      // a repeat: measured once
		"$argon2i$v=19$m=64,t=1,p=1$",  // argon2i at the hasher's own parameters: another set
		"$argon2id$v=19$m=64,t=1,p=1$", // the hasher's own: measured once
		"$argon2id$v=19$m=64,t=1,p=1",  // no '$' after the parameters: not a key
		"$2x$04$", "$2b$99$", "garbage", "",
	}
	if err := h.Calibrate(context.Background(), keys); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 9 { // 3 sets × 3
		t.Fatalf("Calibrate ran %d computations, want 9 (3 parameter sets, 3 each)", got)
	}
	var slowest time.Duration
	for _, d := range h.measured {
		slowest = max(slowest, d)
	}
	if len(h.measured) != 3 || h.Floor() != slowest || h.Floor() <= 0 {
		t.Fatalf("measured %v, Floor %v; want 3 sets and their slowest", h.measured, h.Floor())
	}
}

func TestCalibrateAlwaysMeasuresTheHashersOwnParameters(t *testing.T) {
	h := newHasher(t, fastParams, 1)
	if err := h.Calibrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.measured[argon2Key(argon2id, fastParams)]; !ok || h.Floor() <= 0 {
		t.Fatalf("measured %v, Floor %v; want the own parameters measured", h.measured, h.Floor())
	}
}

func TestCalibrateReturnsTheContextError(t *testing.T) {
	h := newHasher(t, fastParams, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Calibrate(ctx, []string{"$2b$04$"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Calibrate = %v, want context.Canceled", err)
	}
}

func TestVerifyRaisesTheFloorOnceWhenItMeetsNewParameters(t *testing.T) {
	h := newHasher(t, fastParams, 1)
	if err := h.Calibrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	cheap := h.Floor()
	// bcrypt cost 8 costs far more than argon2id at m=64,t=1.
	bc, err := bcrypt.GenerateFromPassword([]byte("legacy"), 8)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustVerify(t, h, string(bc), "wrong")
	took := time.Since(start)
	raised := h.Floor()
	if raised <= cheap || raised > took {
		t.Fatalf("Floor after the first cost-8 bcrypt = %v (before %v, the verification took %v); want it raised to that verification", raised, cheap, took)
	}
	if h.measured["$2a$08$"] != raised {
		t.Fatalf("measured %v, want $2a$08$ at %v", h.measured, raised)
	}
	// Later verifications at known parameters change nothing, even a slow one.
	h.record("$2a$08$", time.Hour, false)
	mustVerify(t, h, string(bc), "wrong")
	if h.Floor() != raised {
		t.Fatalf("Floor moved from %v to %v at parameters already measured", raised, h.Floor())
	}
	// A malformed hash measures nothing.
	mustVerifyErr(t, h, string(bc[:59]))
	if len(h.measured) != 2 {
		t.Fatalf("measured %v, want the own parameters and cost 8", h.measured)
	}
}

func mustVerifyErr(tb testing.TB, h *Hasher, encoded string) {
	tb.Helper()
	if _, _, err := h.Verify(context.Background(), encoded, "pw"); !errors.Is(err, ErrMalformedHash) {
		tb.Fatalf("Verify = %v, want ErrMalformedHash", err)
	}
}

func TestTheMeasuredSetsAreBounded(t *testing.T) {
	h := newHasher(t, fastParams, 1)
	for m := range uint32(maxMeasured + 10) {
		h.record(argon2Key(argon2id, Params{Memory: 64 + m, Time: 1, Threads: 1}), time.Millisecond, false)
	}
	h.record("$2b$10$", time.Hour, false)
	if len(h.measured) != maxMeasured || h.Floor() != time.Millisecond {
		t.Fatalf("%d sets measured, Floor %v; want %d and 1ms", len(h.measured), h.Floor(), maxMeasured)
	}
}

func TestPadWaitsUntilStartPlusTheFloor(t *testing.T) {
	h := newHasher(t, fastParams, 1)
	h.record("$2b$10$", 30*time.Millisecond, false)
	n := countComputations(h)
	start := time.Now()
	if err := h.Pad(context.Background(), start); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < PadHeadroom*30*time.Millisecond {
		t.Fatalf("Pad returned after %v, want at least %d× the 30ms floor", took, PadHeadroom)
	}
	if n.Load() != 0 {
		t.Fatal("Pad computed a hash")
	}
	// A start long enough ago needs no wait: with a 5s floor, a Pad that waited would take seconds.
	h.record("$2b$12$", 5*time.Second, false)
	before := time.Now()
	if err := h.Pad(context.Background(), before.Add(-time.Minute)); err != nil || time.Since(before) > time.Second {
		t.Fatalf("Pad of a start a minute ago = %v after %v; want nil at once", err, time.Since(before))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	h.record("$2b$14$", time.Hour, false)
	if err := h.Pad(ctx, time.Now()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Pad with an ending context = %v, want context.DeadlineExceeded", err)
	}
}

func TestCheckImported(t *testing.T) {
	salt, key := b64.EncodeToString(make([]byte, 16)), b64.EncodeToString(make([]byte, 32))
	argon := func(variant, params string) string { return "$" + variant + "$v=19$" + params + "$" + salt + "$" + key }
	bc, err := bcrypt.GenerateFromPassword([]byte("legacy"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	body := string(bc[7:]) // 22 salt and 31 digest characters
	for _, ok := range []string{
		"$2a$04$" + body, "$2b$10$" + body, "$2y$12$" + body, "$2b$14$" + body,
		argon("argon2id", "m=65536,t=3,p=4"), argon("argon2id", "m=65536,t=10,p=8"), argon("argon2i", "m=65536,t=10,p=8"),
		argon("argon2i", "m=4096,t=3,p=1"),
		"$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
	} {
		if err := CheckImported(ok); err != nil {
			t.Errorf("CheckImported(%.40q…) = %v, want nil", ok, err)
		}
	}
	for _, tc := range []struct{ name, hash, says string }{
		{"empty", "", "not an argon2id or argon2i"},
		{"bcrypt cost 3", "$2b$03$" + body, "bcrypt cost 3 is outside the bounds 4 to 14"},
		{"bcrypt cost 15", "$2b$15$" + body, "bcrypt cost 15 is outside the bounds 4 to 14"},
		{"bcrypt $2x$", "$2x$10$" + body, "not an argon2id or argon2i"},
		{"bcrypt too short", "$2b$10$" + body[:52], "60 characters, not 59"},
		{"bcrypt too long", "$2b$10$" + body + ".", "60 characters, not 61"},
		{"bcrypt cost not digits", "$2b$1x$" + body, "two digits"},
		{"bcrypt character outside the alphabet", "$2b$10$" + body[:20] + "+" + body[21:], "alphabet"},
		{"argon2id m=65537", argon("argon2id", "m=65537,t=3,p=4"), "argon2id memory m=65537 is over the bound of 65536 KiB"},
		{"argon2i m=65537", argon("argon2i", "m=65537,t=3,p=4"), "argon2i memory m=65537 is over the bound of 65536 KiB"},
		{"argon2id t=11", argon("argon2id", "m=65536,t=11,p=4"), "time t=11 is over the bound of 10"},
		{"argon2i p=9", argon("argon2i", "m=65536,t=3,p=9"), "parallelism p=9 is over the bound of 8"},
		{"argon2id v=16", "$argon2id$v=16$m=65536,t=3,p=4$" + salt + "$" + key, "not an argon2id or argon2i v=19"},
		{"argon2id salt too short", "$argon2id$v=19$m=65536,t=3,p=4$" + b64.EncodeToString(make([]byte, 4)) + "$" + key, "argon2id salt"},
		{"argon2i key too long", "$argon2i$v=19$m=65536,t=3,p=4$" + salt + "$" + b64.EncodeToString(make([]byte, 65)), "argon2i key"},
		{"argon2d", argon("argon2d", "m=65536,t=3,p=4"), "not an argon2id or argon2i"},
		{"scrypt", "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E", "not an argon2id or argon2i"},
		{"pbkdf2", "$pbkdf2-sha256$29000$N2bsvbe2ttZqDaGU8r5XCg$jlXKnRtE0J.Tn5M9E3pWmbI7vb/GCl.0XENqKkyhDpI", "not an argon2id or argon2i"},
		{"django pbkdf2", "pbkdf2_sha256$260000$c2FsdHNhbHQ$ZGlnZXN0ZGlnZXN0", "not an argon2id or argon2i"},
		{"plain text", "correct horse battery staple", "not an argon2id or argon2i"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckImported(tc.hash)
			if !errors.Is(err, ErrImportRefused) {
				t.Fatalf("CheckImported = %v, want ErrImportRefused", err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
			if len(tc.hash) > 10 && strings.Contains(err.Error(), tc.hash[len(tc.hash)-10:]) {
				t.Errorf("error %q quotes the hash", err)
			}
		})
	}
}
