package token

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testTOTPSecret stands for a TOTP secret: what the Sealer exists to keep.
var testTOTPSecret = []byte("JBSWY3DPEHPK3PXP-totp-secret")

const testContext = "mfa-factor:factor-1"

func mustSeal(tb testing.TB, s *Sealer, plaintext []byte, context string) string {
	tb.Helper()
	sealed, err := s.Seal(plaintext, context)
	if err != nil {
		tb.Fatalf("Seal: %v", err)
	}
	return sealed
}

func mustOpen(tb testing.TB, s *Sealer, sealed, context string) (plaintext []byte, current bool) {
	tb.Helper()
	plaintext, current, err := s.Open(sealed, context)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return plaintext, current
}

// wantSealedInvalid fails unless err wraps ErrSealedSecretInvalid and says nothing of the plaintext
// or of any encryption key of ks.
func wantSealedInvalid(tb testing.TB, ks *KeySet, err error) {
	tb.Helper()
	if !errors.Is(err, ErrSealedSecretInvalid) {
		tb.Fatalf("error %v; want ErrSealedSecretInvalid", err)
	}
	msg := err.Error()
	for _, f := range append(encryptionKeyForms(ks), string(testTOTPSecret)) {
		if strings.Contains(msg, f) {
			tb.Fatalf("error %q contains secret material %q", msg, f)
		}
	}
}

// encryptionKeyForms are the spellings under which an encryption key could leak into output.
func encryptionKeyForms(ks *KeySet) []string {
	var forms []string
	for _, k := range ks.state.Load().encByKID {
		forms = append(forms,
			base64.RawURLEncoding.EncodeToString(k.key),
			base64.StdEncoding.EncodeToString(k.key),
			string(k.key),
			hex.EncodeToString(k.key),
			fmt.Sprint(k.key),
		)
	}
	return forms
}

func TestSealedSecretsOpenWithTheirContextAndTheCurrentKey(t *testing.T) {
	ks := mustLoadOrCreate(t, keyFilePath(t), newClock())
	s := ks.Sealer()
	sealed := mustSeal(t, s, testTOTPSecret, testContext)

	parts := strings.Split(sealed, ".")
	if len(parts) != 3 || parts[0] != "v1" || parts[1] != ks.EncryptionKIDs()[0] {
		t.Fatalf("sealed secret %q; want v1.<current kid %s>.<payload>", sealed, ks.EncryptionKIDs()[0])
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(payload) != 12+len(testTOTPSecret)+16 {
		t.Fatalf("payload of %d bytes (%v); want nonce, ciphertext and tag", len(payload), err)
	}
	if strings.Contains(sealed, string(testTOTPSecret)) {
		t.Fatal("the sealed secret contains the plaintext")
	}
	got, current := mustOpen(t, s, sealed, testContext)
	if !bytes.Equal(got, testTOTPSecret) || !current {
		t.Fatalf("Open: %q current=%v; want the plaintext, current", got, current)
	}
	if again := mustSeal(t, s, testTOTPSecret, testContext); again == sealed {
		t.Fatal("two seals of one plaintext are equal: the nonce is not random")
	}
	if empty, current := mustOpen(t, s, mustSeal(t, s, nil, testContext), testContext); len(empty) != 0 || !current {
		t.Fatalf("an empty plaintext opens as %q", empty)
	}
}

// The format is plain AES-256-GCM, so a sealed secret can be opened with the key file and any
// implementation: the payload is nonce || ciphertext || tag, the context the additional data.
func TestASealedSecretIsAES256GCMUnderTheFileKeyWithTheContextAsAdditionalData(t *testing.T) {
	path := keyFilePath(t)
	ks := mustLoadOrCreate(t, path, newClock())
	sealed := mustSeal(t, ks.Sealer(), testTOTPSecret, testContext)

	entry := readKeyFileForTest(t, path).EncryptionKeys[0]
	key, _ := base64.RawURLEncoding.DecodeString(entry.Key)
	block, err := aes.NewCipher(key)
	if err != nil || len(key) != 32 {
		t.Fatalf("key of %d bytes: %v", len(key), err)
	}
	gcm, _ := cipher.NewGCM(block)
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(sealed, ".")[2])
	got, err := gcm.Open(nil, payload[:12], payload[12:], []byte(testContext))
	if err != nil || !bytes.Equal(got, testTOTPSecret) {
		t.Fatalf("independent AES-256-GCM open: %q %v", got, err)
	}
}

func TestASealedSecretDoesNotOpenInAnotherContext(t *testing.T) {
	ks := mustKeySet(t, nil)
	s := ks.Sealer()
	sealed := mustSeal(t, s, testTOTPSecret, testContext)
	for _, other := range []string{"mfa-factor:factor-2", "mfa-factor:factor-1 ", "mfa-factor:", "x"} {
		_, _, err := s.Open(sealed, other)
		wantSealedInvalid(t, ks, err)
	}
	if _, err := s.Seal(testTOTPSecret, ""); err == nil {
		t.Fatal("Seal with an empty context: a secret bound to nothing")
	}
}

func TestAlteredOrMalformedSealedSecretsDoNotOpen(t *testing.T) {
	ks := mustKeySet(t, nil)
	s := ks.Sealer()
	sealed := mustSeal(t, s, testTOTPSecret, testContext)
	prefix, payload := sealed[:strings.LastIndex(sealed, ".")+1], strings.Split(sealed, ".")[2]
	raw, _ := base64.RawURLEncoding.DecodeString(payload)

	// Every single bit flipped, in the nonce, the ciphertext and the tag.
	for i := range raw {
		for bit := range 8 {
			altered := slices.Clone(raw)
			altered[i] ^= 1 << bit
			_, _, err := s.Open(prefix+base64.RawURLEncoding.EncodeToString(altered), testContext)
			wantSealedInvalid(t, ks, err)
		}
	}
	cases := map[string]string{
		"empty":                "",
		"no version":           strings.TrimPrefix(sealed, "v1."),
		"version 2":            "v2" + strings.TrimPrefix(sealed, "v1"),
		"no payload":           prefix,
		"no kid":               "v1.." + payload,
		"unknown kid":          "v1.AAAAAAAAAAAAAAAA." + payload,
		"kid not base64url":    "v1.a+b." + payload,
		"payload not base64":   prefix + "!!!!",
		"padded payload":       prefix + base64.URLEncoding.EncodeToString(raw),
		"truncated":            sealed[:len(sealed)-4],
		"tag only":             prefix + base64.RawURLEncoding.EncodeToString(raw[len(raw)-16:]),
		"nonce and short tag":  prefix + base64.RawURLEncoding.EncodeToString(raw[:12+15]),
		"extra dot":            sealed + ".x",
		"appended byte":        prefix + base64.RawURLEncoding.EncodeToString(append(slices.Clone(raw), 0)),
		"ciphertext reordered": prefix + base64.RawURLEncoding.EncodeToString(append(slices.Clone(raw[12:]), raw[:12]...)),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			plaintext, current, err := s.Open(in, testContext)
			wantSealedInvalid(t, ks, err)
			if plaintext != nil || current {
				t.Fatalf("a failed Open returned %q current=%v", plaintext, current)
			}
		})
	}
}

func TestRotationAddsACurrentEncryptionKeyAndOldSecretsStillOpen(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	ks := mustLoadOrCreate(t, path, clock)
	s := ks.Sealer() // held across the rotation, as a service holds it
	oldKID := ks.EncryptionKIDs()[0]
	old := mustSeal(t, s, testTOTPSecret, testContext)

	clock.Advance(time.Minute)
	rotated := mustRotate(t, path, clock, time.Hour)
	newKID := rotated.EncryptionKIDs()[0]
	if newKID == oldKID || !slices.Equal(rotated.EncryptionKIDs(), []string{newKID, oldKID}) {
		t.Fatalf("encryption kids after rotation %v; want a new current one before %s", rotated.EncryptionKIDs(), oldKID)
	}
	if _, err := ks.Reload(); err != nil {
		t.Fatal(err)
	}

	got, current := mustOpen(t, s, old, testContext)
	if !bytes.Equal(got, testTOTPSecret) || current {
		t.Fatalf("old secret after rotation: %q current=%v; want it opened, not current", got, current)
	}
	resealed := mustSeal(t, s, got, testContext)
	if kid := strings.Split(resealed, ".")[1]; kid != newKID {
		t.Fatalf("sealed after the reload under %s; want the new key %s", kid, newKID)
	}
	if _, current := mustOpen(t, s, resealed, testContext); !current {
		t.Fatal("a secret sealed under the new key is not current")
	}

	kf := readKeyFileForTest(t, path)
	if len(kf.EncryptionKeys) != 2 || !kf.EncryptionKeys[0].Current || kf.EncryptionKeys[1].Current ||
		kf.EncryptionKeys[0].KID != newKID || !kf.EncryptionKeys[0].CreatedAt.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("encryption keys in the file after rotation: %v", kf.EncryptionKeys)
	}
}

func TestEncryptionKeysAreNeverPrunedByRotation(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	ks := mustLoadOrCreate(t, path, clock)
	first := mustSeal(t, ks.Sealer(), testTOTPSecret, testContext)
	for range 4 {
		clock.Advance(24 * time.Hour)
		ks = mustRotate(t, path, clock, 0) // signing keys retired before now are dropped
	}
	if len(ks.KIDs()) != 2 || len(ks.EncryptionKIDs()) != 5 {
		t.Fatalf("after 4 rotations with no retention: signing kids %v, encryption kids %v; want 2 and 5",
			ks.KIDs(), ks.EncryptionKIDs())
	}
	if _, current := mustOpen(t, ks.Sealer(), first, testContext); current {
		t.Fatal("the first key is still current")
	}
}

func TestASecondKeySetOpensWhatARotationElsewhereSealedByReloadingOnTheUnknownKID(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	a := mustLoadOrCreate(t, path, clock) // the instance that sees the rotation first
	b := mustLoadOrCreate(t, path, clock) // an instance whose timer has not reloaded yet

	mustRotate(t, path, clock, time.Hour)
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	sealed := mustSeal(t, a.Sealer(), testTOTPSecret, testContext)
	got, current := mustOpen(t, b.Sealer(), sealed, testContext)
	if !bytes.Equal(got, testTOTPSecret) || !current {
		t.Fatalf("b opened %q current=%v; want the plaintext under its new current key", got, current)
	}
	if b.EncryptionKIDs()[0] != a.EncryptionKIDs()[0] {
		t.Fatal("b did not reload the rotated file")
	}

	// Made-up kids do not make every Open read the disk: one reload per interval...
	clock.Advance(UnknownKIDReloadInterval - time.Second)
	mustRotate(t, path, clock, time.Hour)
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	sealed = mustSeal(t, a.Sealer(), testTOTPSecret, testContext)
	_, _, err := b.Sealer().Open(sealed, testContext)
	wantSealedInvalid(t, b, err)

	// ...and once it has passed, the unknown kid is looked up again.
	clock.Advance(time.Second)
	mustOpen(t, b.Sealer(), sealed, testContext)

	// The two kinds of kid are timed apart: an unknown encryption kid does not hold back the reload
	// an unknown signing kid asks for.
	clock.Advance(UnknownKIDReloadInterval)
	if _, _, err := b.Sealer().Open("v1.AAAAAAAAAAAAAAAA."+strings.Split(sealed, ".")[2], testContext); err == nil {
		t.Fatal("opened under a made-up kid")
	}
	mustRotate(t, path, clock, time.Hour)
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	issA := mustIssuer(t, Config{Keys: a, Clock: clock})
	mustVerify(t, mustIssuer(t, Config{Keys: b, Clock: clock}), mustSign(t, issA, testClaims()))
}

func TestAnInMemorySetDoesNotReloadForAnUnknownEncryptionKID(t *testing.T) {
	a, b := mustKeySet(t, nil), mustKeySet(t, nil)
	_, _, err := b.Sealer().Open(mustSeal(t, a.Sealer(), testTOTPSecret, testContext), testContext)
	wantSealedInvalid(t, b, err)
}

func TestAKeyFileWithoutEncryptionKeysGainsOneOnceAndKeepsItsKeysAndSecret(t *testing.T) {
	path := keyFilePath(t)
	before := writeOldKeyFile(t, path, testRefreshSecret)
	_, err := LoadKeyFile(path, nil)
	if err == nil || !strings.Contains(err.Error(), `run "fluxauth keys rotate"`) || !strings.Contains(err.Error(), "encryptionKeys") {
		t.Fatalf("LoadKeyFile of a file without encryption keys: %v; want an error naming encryptionKeys and the fix", err)
	}
	if strings.Contains(err.Error(), "refreshSecret") {
		t.Fatalf("the error names the refresh secret the file has: %v", err)
	}

	kids := concurrentLoads(t, path, 8, func(ks *KeySet) string { return strings.Join(ks.EncryptionKIDs(), ",") })
	after := readKeyFileForTest(t, path)
	if len(after.EncryptionKeys) != 1 || !after.EncryptionKeys[0].Current {
		t.Fatalf("encryption keys after the upgrade: %v; want one current", after.EncryptionKeys)
	}
	for _, k := range kids {
		if k != after.EncryptionKeys[0].KID {
			t.Fatalf("concurrent upgrades disagree: %v, file has %s", kids, after.EncryptionKeys[0].KID)
		}
	}
	if after.RefreshSecret != before.RefreshSecret || len(after.Keys) != 1 || after.Keys[0].KID != before.Keys[0].KID ||
		after.Keys[0].PrivateKey != before.Keys[0].PrivateKey {
		t.Fatal("the upgrade changed the signing key or the refresh secret")
	}
	if _, err := LoadKeyFile(path, nil); err != nil {
		t.Fatalf("LoadKeyFile after the upgrade: %v", err)
	}
	upgraded := mustReadFile(t, path)
	mustLoadOrCreate(t, path, newClock())
	if !bytes.Equal(mustReadFile(t, path), upgraded) {
		t.Fatal("loading an upgraded file rewrote it")
	}
}

func TestRotatingAFileWithoutEncryptionKeysAddsOneCurrentKey(t *testing.T) {
	path := keyFilePath(t)
	before := writeOldKeyFile(t, path, testRefreshSecret)
	ks := mustRotate(t, path, newClock(), time.Hour)
	if len(ks.EncryptionKIDs()) != 1 {
		t.Fatalf("encryption kids %v; want the one the rotation added", ks.EncryptionKIDs())
	}
	if readKeyFileForTest(t, path).RefreshSecret != before.RefreshSecret {
		t.Fatal("rotation changed the refresh secret")
	}
	if _, err := LoadKeyFile(path, nil); err != nil {
		t.Fatal(err)
	}
}

func TestAKeyFileWithoutBothSecretsNamesBoth(t *testing.T) {
	path := keyFilePath(t)
	writeSecretlessKeyFile(t, path)
	_, err := LoadKeyFile(path, nil)
	if err == nil || !strings.Contains(err.Error(), "has no refreshSecret and no encryptionKeys") ||
		!strings.Contains(err.Error(), `run "fluxauth keys rotate" to add them`) {
		t.Fatalf("LoadKeyFile of a file without either: %v", err)
	}
	ks := mustLoadOrCreate(t, path, newClock())
	if len(ks.EncryptionKIDs()) != 1 {
		t.Fatalf("encryption kids after the upgrade: %v", ks.EncryptionKIDs())
	}
}

func TestConcurrentSealsAndOpensDuringReloads(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	ks := mustLoadOrCreate(t, path, clock)
	s := ks.Sealer()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				ctx := "mfa-factor:" + string(rune('a'+g))
				sealed, err := s.Seal(testTOTPSecret, ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if got, _, err := s.Open(sealed, ctx); err != nil || !bytes.Equal(got, testTOTPSecret) {
					t.Errorf("Open during reloads: %q %v", got, err)
					return
				}
			}
		}()
	}
	for range 3 {
		mustRotate(t, path, clock, time.Hour)
		if _, err := ks.Reload(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}
