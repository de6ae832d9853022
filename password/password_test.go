package password

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// fastParams keep the suite quick under -race. The production defaults are internal/config's, which
// checks that they validate.
var fastParams = Params{Memory: 64, Time: 1, Threads: 1}

// newHasher returns a Hasher at params with crypto/rand salts.
func newHasher(tb testing.TB, params Params, workers int) *Hasher {
	tb.Helper()
	return New(params, workers, nil)
}

func mustHash(tb testing.TB, h *Hasher, pw string) string {
	tb.Helper()
	encoded, err := h.Hash(context.Background(), pw)
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return encoded
}

// mustVerify fails tb unless Verify returns no error, and returns its two results.
func mustVerify(tb testing.TB, h *Hasher, encoded, pw string) (ok, needsRehash bool) {
	tb.Helper()
	ok, needsRehash, err := h.Verify(context.Background(), encoded, pw)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return ok, needsRehash
}

// dummyOf is a hash at h's own parameters that no password matches.
func dummyOf(tb testing.TB, h *Hasher) string {
	tb.Helper()
	dummy, ok := h.dummyFor(argon2Key(argon2id, h.Params()))
	if !ok {
		tb.Fatal("no dummy hash for the hasher's own parameters")
	}
	return dummy
}

// handMade builds an argon2id PHC string outside Hash, the way another implementation would.
func handMade(tb testing.TB, p Params, salt []byte, keyLen uint32, pw string) string {
	tb.Helper()
	return encodeArgon2id(p, salt, argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen))
}

func TestHashThenVerifyAcceptsTheSamePassword(t *testing.T) {
	for _, tc := range []struct{ name, pw string }{
		{"ascii", "correct horse battery staple"},
		{"multibyte", "пароль-密码-🔑"},
		{"empty", ""},
		{"longest allowed", strings.Repeat("ж", MaxLength)},
		{"with dollar signs and commas", "$argon2id$v=19$m=1,t=1,p=1$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHasher(t, fastParams, 1)
			encoded := mustHash(t, h, tc.pw)
			ok, needsRehash := mustVerify(t, h, encoded, tc.pw)
			if !ok || needsRehash {
				t.Fatalf("Verify(Hash(pw), pw) = ok %v, needsRehash %v; want true, false", ok, needsRehash)
			}
		})
	}
}

func TestVerifyRejectsAWrongPassword(t *testing.T) {
	h := newHasher(t, fastParams, 1)
	encoded := mustHash(t, h, "correct horse battery staple")
	for _, wrong := range []string{"", "correct horse battery stapl", "Correct horse battery staple", "correct horse battery staple "} {
		ok, needsRehash := mustVerify(t, h, encoded, wrong)
		if ok || needsRehash {
			t.Errorf("Verify(hash, %q) = %v, %v; want false, false", wrong, ok, needsRehash)
		}
	}
}

func TestHashWritesAPHCStringWithTheInjectedSaltAndTheArgon2idKey(t *testing.T) {
	salt := []byte("0123456789abcdef")
	h := New(fastParams, 1, bytes.NewReader(salt))
	encoded := mustHash(t, h, "hunter22hunter22")

	want := "$argon2id$v=19$m=64,t=1,p=1$" + b64.EncodeToString(salt) + "$" +
		b64.EncodeToString(argon2.IDKey([]byte("hunter22hunter22"), salt, 1, 64, 1, 32))
	if encoded != want {
		t.Fatalf("Hash = %q\nwant %q", encoded, want)
	}
	d, err := decodeArgon2(encoded)
	if err != nil {
		t.Fatalf("decoding our own hash: %v", err)
	}
	if d.params != fastParams || !bytes.Equal(d.salt, salt) || len(d.key) != 32 {
		t.Errorf("decoded %+v, salt %q, key length %d; want %+v, %q, 32", d.params, d.salt, len(d.key), fastParams, salt)
	}
}

func TestParamsAppearInTheHash(t *testing.T) {
	h := New(Params{Memory: 256, Time: 2, Threads: 2}, 1, nil)
	encoded := mustHash(t, h, "correct horse battery staple")
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=256,t=2,p=2$") {
		t.Fatalf("Hash at m=256,t=2,p=2 = %q", encoded)
	}
	fields := strings.Split(encoded, "$")
	if len(fields[4]) != 22 || len(fields[5]) != 43 { // 16 and 32 bytes, unpadded
		t.Errorf("salt %q and key %q are not 16 and 32 bytes of raw base64", fields[4], fields[5])
	}
	if ok, needsRehash := mustVerify(t, h, encoded, "correct horse battery staple"); !ok || needsRehash {
		t.Errorf("Verify at the hasher's own params = %v, %v; want true, false", ok, needsRehash)
	}
}

func TestVerifyAcceptsAHashFromAnotherArgon2Implementation(t *testing.T) {
	// From the argon2-cffi README (Python, binding the reference C implementation).
	const cffi = "$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"
	h := newHasher(t, fastParams, 1)
	ok, needsRehash := mustVerify(t, h, cffi, "correct horse battery staple")
	if !ok || !needsRehash {
		t.Fatalf("Verify(argon2-cffi hash) = %v, %v; want true, true (its parameters are not ours)", ok, needsRehash)
	}
	if ok, _ := mustVerify(t, h, cffi, "Tr0ub4dor&3"); ok {
		t.Fatal("argon2-cffi hash accepted a wrong password")
	}
}

func TestVerifyRejectsATamperedHash(t *testing.T) {
	h := newHasher(t, fastParams, 1)
	const pw = "correct horse battery staple"
	encoded := mustHash(t, h, pw)
	fields := strings.Split(encoded, "$") // "", argon2id, v=19, params, salt, key
	flip := func(s string) string {       // change the first character, keeping valid base64
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	join := func(params, salt, key string) string {
		return strings.Join([]string{"", "argon2id", "v=19", params, salt, key}, "$")
	}
	for _, tc := range []struct{ name, encoded string }{
		{"salt changed", join(fields[3], flip(fields[4]), fields[5])},
		{"key changed", join(fields[3], fields[4], flip(fields[5]))},
		{"memory changed", join("m=72,t=1,p=1", fields[4], fields[5])},
		{"time changed", join("m=64,t=2,p=1", fields[4], fields[5])},
		{"threads changed", join("m=64,t=1,p=2", fields[4], fields[5])},
		{"key truncated to 16 bytes", join(fields[3], fields[4], b64.EncodeToString(mustDecode(t, fields[5])[:16]))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.encoded == encoded {
				t.Fatal("tampering changed nothing")
			}
			ok, needsRehash := mustVerify(t, h, tc.encoded, pw)
			if ok || needsRehash {
				t.Fatalf("Verify(tampered, right password) = %v, %v; want false, false", ok, needsRehash)
			}
		})
	}
}

func mustDecode(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// malformedHashes are stored hashes Verify must refuse with ErrMalformedHash; the fuzz test seeds
// from them too.
func malformedHashes(tb testing.TB) map[string]string {
	tb.Helper()
	salt, key := b64.EncodeToString(make([]byte, 16)), b64.EncodeToString(make([]byte, 32))
	a := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	bc, err := bcrypt.GenerateFromPassword([]byte("legacy password"), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	good := string(bc) // $2a$04$ + 53 characters
	return map[string]string{
		"empty":                      "",
		"plain text":                 "correct horse battery staple",
		"prefix only":                "$argon2id$",
		"argon2i version 16":         "$argon2i$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"argon2i parameter missing":  "$argon2i$v=19$m=64,t=1$" + salt + "$" + key,
		"argon2i key too short":      "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + b64.EncodeToString(make([]byte, 8)),
		"argon2i salt padded":        "$argon2i$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"argon2i time above ceiling": "$argon2i$v=19$m=64,t=1000000,p=1$" + salt + "$" + key,
		"argon2 without variant":     "$argon2$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"argon2d":                    "$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"version 16":                 "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"version missing":            "$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"key missing":                "$argon2id$v=19$m=64,t=1,p=1$" + salt,
		"extra field":                a("m=64,t=1,p=1") + "$" + key,
		"trailing dollar":            a("m=64,t=1,p=1") + "$",
		"parameters out of order":    a("t=1,m=64,p=1"),
		"parameter missing":          a("m=64,t=1"),
		"extra parameter":            a("m=64,t=1,p=1,keyid=x"),
		"parameter not a number":     a("m=abc,t=1,p=1"),
		"negative parameter":         a("m=-64,t=1,p=1"),
		"signed parameter":           a("m=+64,t=1,p=1"),
		"leading zero":               a("m=064,t=1,p=1"),
		"empty parameter":            a("m=,t=1,p=1"),
		"memory overflows uint32":    a("m=4294967296,t=1,p=1"),
		"memory above the ceiling":   a("m=4294967295,t=1,p=1"),
		"time zero":                  a("m=64,t=0,p=1"),
		"time above the ceiling":     a("m=64,t=1000000,p=1"),
		"threads zero":               a("m=64,t=1,p=0"),
		"threads overflow uint8":     a("m=64,t=1,p=256"),
		"memory below 8 KiB a lane":  a("m=15,t=1,p=2"),
		"salt not base64":            "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key,
		"salt padded":                "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"salt with a newline":        "$argon2id$v=19$m=64,t=1,p=1$" + salt[:10] + "\n" + salt[10:] + "$" + key,
		"salt too short":             "$argon2id$v=19$m=64,t=1,p=1$" + b64.EncodeToString(make([]byte, 4)) + "$" + key,
		"salt empty":                 "$argon2id$v=19$m=64,t=1,p=1$$" + key,
		"key too short":              "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + b64.EncodeToString(make([]byte, 8)),
		"key too long":               "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + b64.EncodeToString(make([]byte, 65)),
		"key empty":                  "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"key with non-zero pad bits": "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:42] + "B",
		"bcrypt truncated":           good[:40],
		"bcrypt with trailing junk":  good + "x",
		"bcrypt cost not a number":   "$2a$xx" + good[6:],
		"bcrypt cost out of range":   "$2a$99" + good[6:],
		"bcrypt cost above ceiling":  "$2a$17" + good[6:],
		"bcrypt salt not base64":     good[:7] + "!!!!!!!!!!!!!!!!!!!!!!" + good[29:],
		"bcrypt unknown variant":     "$2x$" + good[4:],
		"bcrypt without minor":       "$2$04" + good[6:],
	}
}

func TestVerifyRefusesMalformedHashesWithoutPanicking(t *testing.T) {
	h := newHasher(t, fastParams, 1)
	const pw = "Sentinel-Password-1234"
	for name, encoded := range malformedHashes(t) {
		t.Run(name, func(t *testing.T) {
			ok, needsRehash, err := h.Verify(context.Background(), encoded, pw)
			if !errors.Is(err, ErrMalformedHash) || ok || needsRehash {
				t.Fatalf("Verify = %v, %v, %v; want false, false, ErrMalformedHash", ok, needsRehash, err)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error %q contains the password", err)
			}
			if len(encoded) > 20 && strings.Contains(err.Error(), encoded) {
				t.Errorf("error %q quotes the stored hash", err)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	h := newHasher(f, fastParams, 1)
	f.Add(mustHash(f, h, "correct horse battery staple"), "correct horse battery staple")
	bc, err := bcrypt.GenerateFromPassword([]byte("legacy password"), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(bc), "legacy password")
	for _, encoded := range malformedHashes(f) {
		f.Add(encoded, "pw")
	}
	// The fuzzer may write any cost into a hash; keep what it can make Verify compute small.
	h.limitMemory, h.limitTime, h.limitBcryptCost = 1024, 4, bcrypt.MinCost
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		ok, needsRehash, err := h.Verify(context.Background(), encoded, pw)
		if err != nil && !errors.Is(err, ErrMalformedHash) {
			t.Fatalf("Verify error %v is not ErrMalformedHash", err)
		}
		if (err != nil || !ok) && (ok || needsRehash) {
			t.Fatalf("Verify = %v, %v, %v: needsRehash or ok alongside a failure", ok, needsRehash, err)
		}
		// Parsing is strict: anything accepted is exactly what we would write for it.
		if d, err := decodeArgon2(encoded); err == nil {
			if again := encodeArgon2(d.variant, d.params, d.salt, d.key); again != encoded {
				t.Fatalf("decoded %q but it encodes back as %q", encoded, again)
			}
		}
	})
}

func TestVerifyAcceptsLegacyBcryptAndAsksForARehash(t *testing.T) {
	h := newHasher(t, fastParams, 1)
	generated, err := bcrypt.GenerateFromPassword([]byte("legacy password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(generated), "$2a$") {
		t.Fatalf("x/crypto wrote %q; the variants below assume $2a$", generated)
	}
	for _, tc := range []struct{ name, encoded, pw string }{
		{"$2a$ (x/crypto, bcryptjs)", string(generated), "legacy password"},
		// $2b$ and $2y$ differ from $2a$ only for passwords over 255 bytes, so the same digest holds.
		{"$2b$ (node bcrypt, OpenBSD)", "$2b$" + string(generated[4:]), "legacy password"},
		{"$2y$ (PHP)", "$2y$" + string(generated[4:]), "legacy password"},
		// From PHP's password_verify documentation: hashes made by another implementation.
		{"$2y$ cost 10 from PHP", "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a", "rasmuslerdorf"},
		{"$2y$ cost 7 from PHP", "$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq", "rasmuslerdorf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, needsRehash := mustVerify(t, h, tc.encoded, tc.pw)
			if !ok || !needsRehash {
				t.Fatalf("Verify(bcrypt, right password) = %v, %v; want true, true", ok, needsRehash)
			}
			ok, needsRehash = mustVerify(t, h, tc.encoded, tc.pw+"x")
			if ok || needsRehash {
				t.Fatalf("Verify(bcrypt, wrong password) = %v, %v; want false, false", ok, needsRehash)
			}
		})
	}
}

func TestVerifyAsksForARehashWhenTheArgon2idHashDiffersFromCurrentSettings(t *testing.T) {
	const pw = "correct horse battery staple"
	salt16, salt8 := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{7}, 8)
	h := newHasher(t, fastParams, 1)
	for _, tc := range []struct {
		name        string
		encoded     string
		needsRehash bool
	}{
		{"current parameters", handMade(t, fastParams, salt16, 32, pw), false},
		{"less memory", handMade(t, Params{Memory: 32, Time: 1, Threads: 1}, salt16, 32, pw), true},
		{"more memory", handMade(t, Params{Memory: 128, Time: 1, Threads: 1}, salt16, 32, pw), true},
		{"other time", handMade(t, Params{Memory: 64, Time: 2, Threads: 1}, salt16, 32, pw), true},
		{"other threads", handMade(t, Params{Memory: 64, Time: 1, Threads: 2}, salt16, 32, pw), true},
		{"shorter salt", handMade(t, fastParams, salt8, 32, pw), true},
		{"shorter key", handMade(t, fastParams, salt16, 16, pw), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, needsRehash := mustVerify(t, h, tc.encoded, pw)
			if !ok || needsRehash != tc.needsRehash {
				t.Fatalf("Verify = %v, %v; want true, %v", ok, needsRehash, tc.needsRehash)
			}
			if ok, needsRehash := mustVerify(t, h, tc.encoded, "wrong"); ok || needsRehash {
				t.Fatalf("Verify(wrong password) = %v, %v; want false, false", ok, needsRehash)
			}
		})
	}
}

func TestNewPicksDefaultsAndRejectsInvalidParams(t *testing.T) {
	for workers, want := range map[int]int{0: runtime.GOMAXPROCS(0), 3: 3} {
		if got := poolSize(New(fastParams, workers, nil)); got != want {
			t.Errorf("workers %d gave a pool of %d, want %d", workers, got, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("New with Time 0 did not panic")
		}
	}()
	New(Params{Memory: 64, Time: 0, Threads: 1}, 1, nil)
}

// poolSize counts the slots of h's pool by taking them all; h is unusable afterwards.
func poolSize(h *Hasher) int {
	n := 0
	for h.pool.TryAcquire(1) {
		n++
	}
	return n
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		p     Params
		valid bool
	}{
		{fastParams, true},
		{Params{Memory: 8, Time: 1, Threads: 1}, true},
		{Params{Memory: maxMemory, Time: maxTime, Threads: 255}, true},
		{Params{Memory: 64, Time: 0, Threads: 1}, false},
		{Params{Memory: 64, Time: 1, Threads: 0}, false},
		{Params{Memory: 7, Time: 1, Threads: 1}, false},
		{Params{Memory: 31, Time: 1, Threads: 4}, false},
		{Params{Memory: maxMemory + 1, Time: 1, Threads: 1}, false},
		{Params{Memory: 64, Time: maxTime + 1, Threads: 1}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.valid {
			t.Errorf("%+v.Validate() = %v, want valid %v", tc.p, err, tc.valid)
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy source unavailable") }

func TestHashFailsWhenTheSaltCannotBeRead(t *testing.T) {
	const pw = "Sentinel-Password-1234"
	for name, r := range map[string]io.Reader{
		"reader fails": failingReader{},
		"reader short": bytes.NewReader([]byte{1, 2, 3}),
	} {
		t.Run(name, func(t *testing.T) {
			encoded, err := New(fastParams, 1, r).Hash(context.Background(), pw)
			if err == nil || encoded != "" {
				t.Fatalf("Hash = %q, %v; want an error", encoded, err)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

// TestPoolNeverRunsMoreThanWorkersComputationsAtOnce holds the computations inside the pool through
// the test hook, so the bound is checked by counting, not by timing.
func TestPoolNeverRunsMoreThanWorkersComputationsAtOnce(t *testing.T) {
	const workers, callers = 2, 20
	h := newHasher(t, fastParams, workers)

	var mu sync.Mutex
	running, maxRunning, waiting := 0, 0, 0
	allWaiting := make(chan struct{})
	started := make(chan struct{}, callers)
	proceed := make(chan struct{})
	h.testHook = func(e poolEvent) {
		mu.Lock()
		switch e {
		case eventWaiting:
			if waiting++; waiting == callers {
				close(allWaiting)
			}
		case eventStarted:
			running++
			maxRunning = max(maxRunning, running)
		case eventFinished:
			running--
		}
		mu.Unlock()
		if e == eventStarted {
			started <- struct{}{}
			<-proceed
		}
	}

	dummy := dummyOf(t, h)
	var wg sync.WaitGroup
	for i := range callers {
		op := []func() error{
			func() error { _, err := h.Hash(context.Background(), "pw"); return err },
			func() error { _, _, err := h.Verify(context.Background(), dummy, "pw"); return err },
			func() error { _, _, err := h.Verify(context.Background(), dummy, "wrong"); return err },
		}[i%3]
		wg.Go(func() {
			if err := op(); err != nil {
				t.Error(err)
			}
		})
	}
	// Hold the first computations until every caller is queued: an unbounded pool would let the
	// rest in now. Then let them through one at a time, each freeing a slot for the next.
	<-allWaiting
	for range workers {
		<-started
	}
	for i := range callers {
		proceed <- struct{}{}
		if i+workers < callers {
			<-started
		}
	}
	wg.Wait()

	if maxRunning != workers {
		t.Fatalf("at most %d computations ran at once, want exactly %d (the bound, reached)", maxRunning, workers)
	}
}

// holdPool returns a one-slot Hasher whose slot is taken by a computation that finishes when release
// is called; callers counts those that asked for the slot.
func holdPool(tb testing.TB) (h *Hasher, callers *atomic.Int32, computed *atomic.Int32, release func()) {
	tb.Helper()
	h = newHasher(tb, fastParams, 1)
	callers, computed = new(atomic.Int32), new(atomic.Int32)
	holding, hold := make(chan struct{}), make(chan struct{})
	h.testHook = func(e poolEvent) {
		switch e {
		case eventWaiting:
			callers.Add(1)
		case eventStarted:
			if computed.Add(1) == 1 {
				close(holding)
				<-hold
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := h.Hash(context.Background(), "holder"); err != nil {
			tb.Error(err)
		}
	}()
	<-holding
	var once sync.Once
	release = func() { once.Do(func() { close(hold); <-done }) }
	tb.Cleanup(release)
	return h, callers, computed, release
}

func TestAWaitingCallerReturnsTheContextErrorWithoutHashing(t *testing.T) {
	ops := map[string]func(ctx context.Context, h *Hasher) error{
		"Hash": func(ctx context.Context, h *Hasher) error { _, err := h.Hash(ctx, "pw"); return err },
		"Verify": func(ctx context.Context, h *Hasher) error {
			_, _, err := h.Verify(ctx, dummyOf(t, h), "pw")
			return err
		},
		"Verify bcrypt": func(ctx context.Context, h *Hasher) error {
			_, _, err := h.Verify(ctx, "$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq", "pw")
			return err
		},
	}
	for name, op := range ops {
		t.Run(name+" cancelled while waiting", func(t *testing.T) {
			h, callers, computed, _ := holdPool(t)
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- op(ctx, h) }()
			for callers.Load() < 2 { // the holder, then this caller, queued behind it
				runtime.Gosched()
			}
			cancel()
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a cancelled caller kept waiting for the pool")
			}
			if n := computed.Load(); n != 1 {
				t.Fatalf("%d computations ran, want only the holder's", n)
			}
		})
		t.Run(name+" deadline passes while waiting", func(t *testing.T) {
			h, _, computed, _ := holdPool(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := op(ctx, h); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want context.DeadlineExceeded", err)
			}
			if n := computed.Load(); n != 1 {
				t.Fatalf("%d computations ran, want only the holder's", n)
			}
		})
		t.Run(name+" already cancelled with a free slot", func(t *testing.T) {
			h := newHasher(t, fastParams, 1)
			var computed atomic.Int32
			h.testHook = func(e poolEvent) {
				if e == eventStarted {
					computed.Add(1)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := op(ctx, h); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if computed.Load() != 0 {
				t.Fatal("hashed for a caller whose context had already ended")
			}
		})
	}
}
