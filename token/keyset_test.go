package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// helperKeyFileEnv makes the test binary act as a separate fluxauth process that loads or creates the
// key file named by the variable and prints the current kid; see TestMain.
const helperKeyFileEnv = "FLUXAUTH_TOKEN_TEST_KEYFILE"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperKeyFileEnv); path != "" {
		ks, err := LoadOrCreateKeyFile(path, nil, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Print(ks.CurrentKID())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func keyFilePath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "signing-keys.json")
}

func mustLoadOrCreate(tb testing.TB, path string, clock *stepClock) *KeySet {
	tb.Helper()
	ks, err := LoadOrCreateKeyFile(path, clock, nil)
	if err != nil {
		tb.Fatalf("LoadOrCreateKeyFile: %v", err)
	}
	return ks
}

func mustRotate(tb testing.TB, path string, clock *stepClock, retention time.Duration) *KeySet {
	tb.Helper()
	ks, err := RotateKeyFile(path, clock, nil, retention)
	if err != nil {
		tb.Fatalf("RotateKeyFile: %v", err)
	}
	return ks
}

func readKeyFileForTest(tb testing.TB, path string) keyFile {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		tb.Fatal(err)
	}
	return kf
}

func jwksKIDs(tb testing.TB, doc []byte) []string {
	tb.Helper()
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(doc, &set); err != nil {
		tb.Fatalf("JWKS is not JSON: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k["kid"].(string))
	}
	return kids
}

func TestKeyFileIsCreatedOnFirstLoadWith0600AndReusedAfterRestart(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	first := mustLoadOrCreate(t, path, clock)

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v; want 0600", info.Mode().Perm())
	}
	kf := readKeyFileForTest(t, path)
	if kf.Version != 1 || len(kf.Keys) != 1 {
		t.Fatalf("key file %+v; want version 1 with one key", kf)
	}
	k := kf.Keys[0]
	if k.KID != first.CurrentKID() || k.Alg != "ES256" || !k.Current || !k.CreatedAt.Equal(epoch) || !k.RetiredAt.IsZero() {
		t.Fatalf("key entry %+v", k)
	}
	if block, _ := pem.Decode([]byte(k.PrivateKey)); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatal("private key is not PKCS#8 PEM")
	}
	if matches, _ := filepath.Glob(path + "*tmp*"); len(matches) > 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}

	// A restart (a new KeySet on the same path) keeps the key, so tokens issued before still verify.
	tok := mustSign(t, mustIssuer(t, Config{Keys: first, Clock: clock}), testClaims())
	before, _ := os.ReadFile(path)
	second := mustLoadOrCreate(t, path, clock)
	if second.CurrentKID() != first.CurrentKID() {
		t.Fatalf("second load has kid %s; want %s", second.CurrentKID(), first.CurrentKID())
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("loading an existing key file rewrote it")
	}
	mustVerify(t, mustIssuer(t, Config{Keys: second, Clock: clock}), tok)
}

func TestLoadKeyFileNeverCreatesOne(t *testing.T) {
	path := keyFilePath(t)
	if _, err := LoadKeyFile(path, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadKeyFile on a missing file: %v; want not-exist", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("LoadKeyFile created the file")
	}
}

func TestConcurrentFirstLoadsOnAFreshPathEndWithOneKey(t *testing.T) {
	for round := range 20 {
		path := keyFilePath(t)
		const n = 8
		kids := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ks, err := LoadOrCreateKeyFile(path, nil, nil)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
					return
				}
				kids[g] = ks.CurrentKID()
			}()
		}
		close(start)
		wg.Wait()
		kf := readKeyFileForTest(t, path)
		if len(kf.Keys) != 1 {
			t.Fatalf("round %d: file holds %d keys; want 1", round, len(kf.Keys))
		}
		for _, kid := range kids {
			if kid != kf.Keys[0].KID {
				t.Fatalf("round %d: loaders disagree: %v, file has %s", round, kids, kf.Keys[0].KID)
			}
		}
	}
}

func TestConcurrentProcessesOnAFreshPathEndWithOneKey(t *testing.T) {
	for round := range 2 {
		path := keyFilePath(t)
		const n = 4
		cmds := make([]*exec.Cmd, n)
		outs := make([]*bytes.Buffer, n)
		for p := range n {
			cmds[p] = exec.Command(os.Args[0], "-test.run=^$")
			cmds[p].Env = append(os.Environ(), helperKeyFileEnv+"="+path)
			outs[p] = &bytes.Buffer{}
			cmds[p].Stdout = outs[p]
			cmds[p].Stderr = os.Stderr
		}
		for _, c := range cmds {
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cmds {
			if err := c.Wait(); err != nil {
				t.Fatalf("round %d: helper process: %v", round, err)
			}
		}
		kf := readKeyFileForTest(t, path)
		if len(kf.Keys) != 1 {
			t.Fatalf("round %d: file holds %d keys; want 1", round, len(kf.Keys))
		}
		for p, out := range outs {
			if out.String() != kf.Keys[0].KID {
				t.Fatalf("round %d: process %d uses kid %q; file has %s", round, p, out, kf.Keys[0].KID)
			}
		}
	}
}

func TestRotationSignsWithTheNewKeyAndKeepsVerifyingOldTokens(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	ks := mustLoadOrCreate(t, path, clock)
	iss := mustIssuer(t, Config{Keys: ks, Clock: clock})
	oldKID := ks.CurrentKID()
	oldTok := mustSign(t, iss, testClaims())

	clock.Advance(time.Minute)
	rotated := mustRotate(t, path, clock, iss.KeyRetention())
	newKID := rotated.CurrentKID()
	if newKID == oldKID {
		t.Fatal("rotation kept the same current kid")
	}
	if changed, err := ks.Reload(); err != nil || !changed {
		t.Fatalf("Reload after rotation: changed=%v err=%v", changed, err)
	}
	if changed, err := ks.Reload(); err != nil || changed {
		t.Fatalf("second Reload: changed=%v err=%v; want no change", changed, err)
	}

	newTok := mustSign(t, iss, testClaims())
	if kid := decodeSegment(t, newTok, 0)["kid"]; kid != newKID {
		t.Fatalf("new token kid %v; want %s", kid, newKID)
	}
	mustVerify(t, iss, newTok)
	clock.Advance(13 * time.Minute) // the old token has a minute left
	mustVerify(t, iss, oldTok)
	if got, want := jwksKIDs(t, ks.JWKS()), []string{newKID, oldKID}; !slices.Equal(got, want) {
		t.Fatalf("JWKS kids %v; want %v", got, want)
	}

	kf := readKeyFileForTest(t, path)
	if len(kf.Keys) != 2 || !kf.Keys[0].Current || kf.Keys[1].Current || !kf.Keys[1].RetiredAt.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("key file after rotation: %v", kf.Keys)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("rotated key file mode %v; want 0600", info.Mode().Perm())
	}
}

func TestRotationPrunesKeysRetiredLongerThanTheRetention(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	retention := DefaultTTL + DefaultLeeway
	k1 := mustLoadOrCreate(t, path, clock).CurrentKID()

	clock.Advance(time.Hour)
	k2 := mustRotate(t, path, clock, retention).CurrentKID() // k1 retired now

	clock.Advance(retention) // k1 retired exactly retention ago: a token it signed may still be accepted
	ks := mustRotate(t, path, clock, retention)
	k3 := ks.CurrentKID()
	if got := ks.KIDs(); !slices.Equal(got, []string{k3, k2, k1}) {
		t.Fatalf("kids %v; want %v (k1 still inside retention)", got, []string{k3, k2, k1})
	}

	clock.Advance(time.Second)
	ks = mustRotate(t, path, clock, retention)
	k4 := ks.CurrentKID()
	if got := ks.KIDs(); !slices.Equal(got, []string{k4, k3, k2}) {
		t.Fatalf("kids %v; want k1 pruned: %v", got, []string{k4, k3, k2})
	}
	if got := jwksKIDs(t, ks.JWKS()); !slices.Equal(got, []string{k4, k3, k2}) {
		t.Fatalf("JWKS kids %v; want %v", got, []string{k4, k3, k2})
	}
	if strings.Contains(string(mustReadFile(t, path)), k1) {
		t.Fatal("pruned key is still in the file")
	}
}

func mustReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestConcurrentRotationsKeepEveryKey(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	mustLoadOrCreate(t, path, clock)
	const n = 6
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := RotateKeyFile(path, clock, nil, time.Hour); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	kf := readKeyFileForTest(t, path)
	if len(kf.Keys) != n+1 {
		t.Fatalf("file holds %d keys after %d rotations of one; want %d", len(kf.Keys), n, n+1)
	}
}

func TestRotatingAMissingFileCreatesItFirst(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	ks := mustRotate(t, path, clock, time.Hour)
	if len(ks.KIDs()) != 2 {
		t.Fatalf("kids %v; want the created key and the rotated-in one", ks.KIDs())
	}
}

func TestReloadKeepsTheKeysItHasWhenTheFileIsBroken(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	ks := mustLoadOrCreate(t, path, clock)
	iss := mustIssuer(t, Config{Keys: ks, Clock: clock})
	kid := ks.CurrentKID()
	if err := os.WriteFile(path, []byte(`{"version":1,"keys":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Reload(); err == nil {
		t.Fatal("Reload of a broken file reported no error")
	}
	if ks.CurrentKID() != kid {
		t.Fatal("a failed Reload replaced the keys")
	}
	mustVerify(t, iss, mustSign(t, iss, testClaims()))
}

func TestUnknownKIDReloadsTheFileAtMostOncePerInterval(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	a := mustLoadOrCreate(t, path, clock) // the instance that reloads first after a rotation
	b := mustLoadOrCreate(t, path, clock) // an instance that has not reloaded yet
	issA := mustIssuer(t, Config{Keys: a, Clock: clock})
	issB := mustIssuer(t, Config{Keys: b, Clock: clock})

	mustRotate(t, path, clock, time.Hour)
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	// b learns the new kid from the token itself.
	mustVerify(t, issB, mustSign(t, issA, testClaims()))

	// A second rotation inside the interval is not picked up by an unknown kid...
	clock.Advance(UnknownKIDReloadInterval - time.Second)
	mustRotate(t, path, clock, time.Hour)
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	tok := mustSign(t, issA, testClaims())
	_, err := issB.Verify(tok)
	wantInvalidToken(t, err, errUnknownKID)

	// ...only once the interval has passed, so made-up kids cannot make every request read the disk.
	clock.Advance(time.Second)
	mustVerify(t, issB, tok)
}

func TestInMemoryKeySetNeverTouchesTheDisk(t *testing.T) {
	ks := mustKeySet(t, nil)
	if changed, err := ks.Reload(); changed || err != nil {
		t.Fatalf("Reload of an in-memory set: %v %v", changed, err)
	}
	iss := mustIssuer(t, Config{Keys: ks})
	_, err := iss.Verify(handSign(t, jwt.SigningMethodES256, currentPrivateKey(ks),
		map[string]any{"alg": "ES256", "kid": "nope"}, validPayload(time.Now())))
	wantInvalidToken(t, err, errUnknownKID)
}

func TestLoadKeyFileRejectsInvalidFiles(t *testing.T) {
	good := func(t *testing.T) keyFileEntry {
		e, err := newKeyEntry(epoch, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	p384 := func(t *testing.T) string {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	cases := map[string]func(t *testing.T) any{
		"empty file":     func(*testing.T) any { return "" },
		"truncated JSON": func(*testing.T) any { return `{"version":1,"keys":[{"kid":` },
		"version 2": func(t *testing.T) any {
			return keyFile{Version: 2, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{good(t)}}
		},
		"no keys": func(*testing.T) any {
			return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys()}
		},
		"short refresh secret": func(t *testing.T) any {
			return keyFile{Version: 1, RefreshSecret: "c2hvcnQ", EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{good(t)}}
		},
		"no current key": func(t *testing.T) any {
			e := good(t)
			e.Current = false
			return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{e}}
		},
		"two current keys": func(t *testing.T) any {
			return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{good(t), good(t)}}
		},
		"duplicate kid": func(t *testing.T) any {
			e := good(t)
			f := e
			f.Current = false
			return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{e, f}}
		},
		"alg RS256": func(t *testing.T) any {
			e := good(t)
			e.Alg = "RS256"
			return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{e}}
		},
		"empty kid": func(t *testing.T) any {
			e := good(t)
			e.KID = ""
			return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{e}}
		},
		"not PEM": func(t *testing.T) any {
			e := good(t)
			e.PrivateKey = "secret"
			return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{e}}
		},
		"P-384 key": func(t *testing.T) any {
			e := good(t)
			e.PrivateKey = p384(t)
			return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{e}}
		},
		"current and retired": func(t *testing.T) any {
			e := good(t)
			e.RetiredAt = epoch
			return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{e}}
		},
		"encryption key not base64url": withEncryptionKeys(func(enc []encryptionKeyEntry) []encryptionKeyEntry {
			enc[0].Key = "not base64url!"
			return enc
		}),
		"encryption key of 16 bytes": withEncryptionKeys(func(enc []encryptionKeyEntry) []encryptionKeyEntry {
			enc[0].Key = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{8}, 16))
			return enc
		}),
		"encryption key of 33 bytes": withEncryptionKeys(func(enc []encryptionKeyEntry) []encryptionKeyEntry {
			enc[0].Key = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{8}, 33))
			return enc
		}),
		"duplicate encryption kid": withEncryptionKeys(func(enc []encryptionKeyEntry) []encryptionKeyEntry {
			other := enc[0]
			other.Current = false
			other.Key = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, encryptionKeyBytes))
			return append(enc, other)
		}),
		"two current encryption keys": withEncryptionKeys(func(enc []encryptionKeyEntry) []encryptionKeyEntry {
			other := enc[0]
			other.KID = "another"
			return append(enc, other)
		}),
		"no current encryption key": withEncryptionKeys(func(enc []encryptionKeyEntry) []encryptionKeyEntry {
			enc[0].Current = false
			return enc
		}),
		"empty encryption kid": withEncryptionKeys(func(enc []encryptionKeyEntry) []encryptionKeyEntry {
			enc[0].KID = ""
			return enc
		}),
		"encryption kid with a dot": withEncryptionKeys(func(enc []encryptionKeyEntry) []encryptionKeyEntry {
			enc[0].KID = "a.b"
			return enc
		}),
		"corrupt PKCS#8": func(t *testing.T) any {
			e := good(t)
			e.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("corrupt der")}))
			return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: testEncryptionKeys(), Keys: []keyFileEntry{e}}
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			path := keyFilePath(t)
			var data []byte
			switch v := build(t).(type) {
			case string:
				data = []byte(v)
			default:
				var err error
				if data, err = json.Marshal(v); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadKeyFile(path, nil)
			if err == nil {
				t.Fatal("invalid key file accepted")
			}
			// LoadOrCreate must not paper over a broken file by replacing it.
			if _, err := LoadOrCreateKeyFile(path, nil, nil); err == nil {
				t.Fatal("LoadOrCreateKeyFile accepted an invalid file")
			}
			if !bytes.Equal(mustReadFile(t, path), data) {
				t.Fatal("a broken key file was overwritten")
			}
			assertNoKeyMaterial(t, err.Error(), data)
		})
	}
}

// testRefreshSecret is a valid refresh secret for hand-built key files.
var testRefreshSecret = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{9}, RefreshSecretBytes))

// withEncryptionKeys builds a case of TestLoadKeyFileRejectsInvalidFiles: a valid file but for its
// encryption keys, testEncryptionKeys changed by mutate.
func withEncryptionKeys(mutate func([]encryptionKeyEntry) []encryptionKeyEntry) func(*testing.T) any {
	return func(t *testing.T) any {
		e, err := newKeyEntry(epoch, nil)
		if err != nil {
			t.Fatal(err)
		}
		return keyFile{Version: 1, RefreshSecret: testRefreshSecret, EncryptionKeys: mutate(testEncryptionKeys()),
			Keys: []keyFileEntry{e}}
	}
}

// concurrentLoads runs n LoadOrCreateKeyFile of path at once and returns what see makes of each set.
func concurrentLoads(t *testing.T, path string, n int, see func(*KeySet) string) []string {
	t.Helper()
	seen := make([]string, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ks, err := LoadOrCreateKeyFile(path, nil, nil)
			if err != nil {
				t.Errorf("LoadOrCreateKeyFile: %v", err)
				return
			}
			seen[g] = see(ks)
		}()
	}
	wg.Wait()
	return seen
}

// testEncryptionKeys returns a valid list of encryption keys for hand-built key files: one current key.
func testEncryptionKeys() []encryptionKeyEntry {
	return []encryptionKeyEntry{{KID: "test-encryption-key", Current: true, CreatedAt: epoch,
		Key: base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{8}, encryptionKeyBytes))}}
}

// writeSecretlessKeyFile writes a key file as versions before refresh secrets wrote them.
func writeSecretlessKeyFile(tb testing.TB, path string) keyFileEntry {
	tb.Helper()
	return writeOldKeyFile(tb, path, "").Keys[0]
}

// writeOldKeyFile writes a key file as versions before encryption keys wrote it: one signing key and
// refreshSecret (none when empty, as versions before refresh secrets wrote it).
func writeOldKeyFile(tb testing.TB, path, refreshSecret string) keyFile {
	tb.Helper()
	e, err := newKeyEntry(epoch, nil)
	if err != nil {
		tb.Fatal(err)
	}
	kf := keyFile{Version: 1, Keys: []keyFileEntry{e}, RefreshSecret: refreshSecret}
	data, _ := json.Marshal(kf)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return kf
}

func TestAKeyFileWithoutARefreshSecretGainsOneOnceAndKeepsItsKeys(t *testing.T) {
	path := keyFilePath(t)
	e := writeSecretlessKeyFile(t, path)
	if _, err := LoadKeyFile(path, nil); err == nil || !strings.Contains(err.Error(), "keys rotate") {
		t.Fatalf("LoadKeyFile of a secretless file: %v; want an error naming the fix", err)
	}
	minted := concurrentLoads(t, path, 8, func(ks *KeySet) string {
		if ks.CurrentKID() != e.KID {
			t.Errorf("the upgrade replaced the signing key")
		}
		s, _, _ := ks.RefreshMinter().Successor("same token", testSession)
		return s
	})
	for _, m := range minted[1:] {
		if m != minted[0] {
			t.Fatal("concurrent upgrades ended with different refresh secrets")
		}
	}
	secret := readKeyFileForTest(t, path).RefreshSecret
	ks := mustRotate(t, path, newClock(), time.Hour)
	if got := readKeyFileForTest(t, path).RefreshSecret; got != secret {
		t.Fatal("rotation changed the refresh secret: every session would end")
	}
	if s, _, _ := ks.RefreshMinter().Successor("same token", testSession); s != minted[0] {
		t.Fatal("the rotated key set derives other refresh tokens")
	}
}

func TestRotatingASecretlessFileAddsASecret(t *testing.T) {
	path := keyFilePath(t)
	writeSecretlessKeyFile(t, path)
	mustRotate(t, path, newClock(), time.Hour)
	if readKeyFileForTest(t, path).RefreshSecret == "" {
		t.Fatal("no refresh secret after rotation")
	}
	if _, err := LoadKeyFile(path, nil); err != nil {
		t.Fatal(err)
	}
}

// assertNoKeyMaterial fails if out contains any PEM body line or private scalar found in data.
func assertNoKeyMaterial(tb testing.TB, out string, data []byte) {
	tb.Helper()
	var kf keyFile
	_ = json.Unmarshal(data, &kf)
	for _, e := range kf.Keys {
		for _, line := range strings.Split(e.PrivateKey, "\n") {
			if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(out, line) {
				tb.Fatalf("output contains private key PEM: %s", out)
			}
		}
	}
	for _, e := range kf.EncryptionKeys {
		if len(e.Key) > 16 && strings.Contains(out, e.Key) {
			tb.Fatalf("output contains an encryption key: %s", out)
		}
	}
}

func TestJWKSPublishesEveryKeyAsAnES256SigningKey(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	mustLoadOrCreate(t, path, clock)
	ks := mustRotate(t, path, clock, time.Hour)
	doc := ks.JWKS()

	var set struct{ Keys []map[string]string }
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys; want 2", len(set.Keys))
	}
	for _, k := range set.Keys {
		want := []string{"alg", "crv", "kid", "kty", "use", "x", "y"}
		if got := slices.Sorted(maps.Keys(k)); !slices.Equal(got, want) {
			t.Fatalf("JWK members %v; want exactly %v (no private d)", got, want)
		}
		if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" {
			t.Fatalf("JWK %v", k)
		}
		priv := ks.state.Load().byKID[k["kid"]].priv
		raw, _ := priv.PublicKey.Bytes()
		x, _ := base64.RawURLEncoding.DecodeString(k["x"])
		y, _ := base64.RawURLEncoding.DecodeString(k["y"])
		if !bytes.Equal(x, raw[1:33]) || !bytes.Equal(y, raw[33:]) {
			t.Fatalf("JWK %s coordinates do not match its key", k["kid"])
		}
		thumb, err := thumbprint(&priv.PublicKey)
		if err != nil || thumb != k["kid"] {
			t.Fatalf("kid %s is not the RFC 7638 thumbprint %s", k["kid"], thumb)
		}
	}

	// A second JOSE implementation reads the set and verifies our token with it.
	var jset jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &jset); err != nil {
		t.Fatalf("go-jose cannot read the JWKS: %v", err)
	}
	tok := mustSign(t, mustIssuer(t, Config{Keys: ks, Clock: clock}), testClaims())
	sig, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := jset.Key(sig.Signatures[0].Header.KeyID)
	if len(keys) != 1 || !keys[0].Valid() || !keys[0].IsPublic() {
		t.Fatalf("go-jose finds %d public keys for the token's kid", len(keys))
	}
	if tp, _ := keys[0].Thumbprint(crypto.SHA256); base64.RawURLEncoding.EncodeToString(tp) != ks.CurrentKID() {
		t.Fatal("go-jose computes a different thumbprint than the kid")
	}
	if _, err := sig.Verify(keys[0]); err != nil {
		t.Fatalf("go-jose rejects our token: %v", err)
	}
}
