package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
)

const (
	testDeviceID = "0190f6a2-7b3c-7d4e-8f00-aabbccddeeff"
	testUser     = "0190f6a2-7b3c-7d4e-8f00-000000000001"
	testGen      = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
)

func testDeviceMinter(tb testing.TB, fill byte) *DeviceMinter {
	tb.Helper()
	m, err := NewDeviceMinter(bytes.Repeat([]byte{fill}, RefreshSecretBytes))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustMintDevice(tb testing.TB, m *DeviceMinter, id, user, gen string) string {
	tb.Helper()
	raw, err := m.Mint(id, user, gen)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func TestDeviceTokenNamesItsIDOnlyForItsAccountAndPasswordGeneration(t *testing.T) {
	m := testDeviceMinter(t, 1)
	raw := mustMintDevice(t, m, testDeviceID, testUser, testGen)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{66}$`).MatchString(raw) || len(raw) != MaxDeviceTokenLen {
		t.Fatalf("device token %q is not %d unpadded base64url characters", raw, MaxDeviceTokenLen)
	}
	if id, err := m.Check(raw, testUser, testGen); err != nil || id != testDeviceID {
		t.Fatalf("Check = %q, %v; want %s", id, err, testDeviceID)
	}
	for name, c := range map[string]struct{ user, gen string }{
		"another account":              {"0190f6a2-7b3c-7d4e-8f00-000000000002", testGen},
		"after the password changed":   {testUser, testGen + "x"},
		"no password any more":         {testUser, ""},
		"user and generation run on":   {testUser + "$", testGen[1:]},
		"generation moved into the id": {testUser + testGen, ""},
	} {
		if _, err := m.Check(raw, c.user, c.gen); !errors.Is(err, ErrInvalidDeviceToken) {
			t.Errorf("%s: err = %v, want ErrInvalidDeviceToken", name, err)
		}
	}
}

func TestAlteredForgedOrForeignDeviceTokensAreInvalid(t *testing.T) {
	m := testDeviceMinter(t, 1)
	raw := mustMintDevice(t, m, testDeviceID, testUser, testGen)
	b, _ := base64.RawURLEncoding.DecodeString(raw)
	cases := map[string]string{
		"empty":              "",
		"truncated":          raw[:len(raw)-1],
		"extended":           raw + "A",
		"not base64url":      strings.Repeat("*", len(raw)),
		"padded":             base64.URLEncoding.EncodeToString(b[:len(b)-1]) + "=",
		"another key file's": mustMintDevice(t, testDeviceMinter(t, 2), testDeviceID, testUser, testGen),
	}
	for i := range b {
		flipped := bytes.Clone(b)
		flipped[i] ^= 0x01
		cases[fmt.Sprintf("byte %d flipped", i)] = base64.RawURLEncoding.EncodeToString(flipped)
	}
	for name, tok := range cases {
		if id, err := m.Check(tok, testUser, testGen); !errors.Is(err, ErrInvalidDeviceToken) || id != "" {
			t.Errorf("%s: Check = %q, %v; want ErrInvalidDeviceToken", name, id, err)
		}
	}
}

// The device key is HMAC-SHA256(refresh secret, "fluxauth device-token key"): every instance with
// the key file derives the same one, and it is neither the refresh secret nor anything a refresh
// token is made with.
func TestDeviceTagIsAnHMACUnderAKeyDerivedFromTheRefreshSecret(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, RefreshSecretBytes)
	m, err := NewDeviceMinter(secret)
	if err != nil {
		t.Fatal(err)
	}
	raw := mustMintDevice(t, m, testDeviceID, testUser, testGen)

	kdf := hmac.New(sha256.New, secret)
	kdf.Write([]byte("fluxauth device-token key"))
	key := kdf.Sum(nil)
	id := uuid.MustParse(testDeviceID)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("fluxauth device token\x00"))
	mac.Write([]byte{1})
	mac.Write(id[:])
	mac.Write([]byte{0, 0, 0, byte(len(testUser))})
	mac.Write([]byte(testUser))
	mac.Write([]byte{0, 0, 0, byte(len(testGen))})
	mac.Write([]byte(testGen))
	want := base64.RawURLEncoding.EncodeToString(append(append([]byte{1}, id[:]...), mac.Sum(nil)...))
	if raw != want {
		t.Fatalf("device token %s, want %s", raw, want)
	}
	if bytes.Equal(key, secret) {
		t.Fatal("the device key is the refresh secret")
	}
}

func TestDeviceMinterNeedsA256BitSecretAndNeverPrintsItsKey(t *testing.T) {
	if _, err := NewDeviceMinter(make([]byte, 16)); err == nil {
		t.Fatal("a 128-bit secret was accepted")
	}
	if _, err := testDeviceMinter(t, 1).Mint("not a uuid", testUser, testGen); err == nil {
		t.Fatal("a token id that is not a UUID was minted")
	}
	m := testDeviceMinter(t, 'k')
	printed := m.String() + m.GoString() + fmt.Sprintf("%v %+v %#v", m, m, m)
	for _, secret := range [][]byte{m.key, bytes.Repeat([]byte{'k'}, RefreshSecretBytes)} {
		for _, form := range []string{string(secret), base64.RawURLEncoding.EncodeToString(secret), fmt.Sprintf("%x", secret)} {
			if strings.Contains(printed, form) {
				t.Fatalf("the key is printed: %s", printed)
			}
		}
	}
}

// Two instances that load one key file check each other's device tokens; another key file's
// instance does not, and rotating the signing keys changes nothing.
func TestKeySetsOfOneKeyFileShareTheirDeviceKey(t *testing.T) {
	path := keyFilePath(t)
	a := mustLoadOrCreate(t, path, newClock())
	b := mustLoadOrCreate(t, path, newClock())
	raw := mustMintDevice(t, a.DeviceMinter(), testDeviceID, testUser, testGen)
	if id, err := b.DeviceMinter().Check(raw, testUser, testGen); err != nil || id != testDeviceID {
		t.Fatalf("the second instance's Check = %q, %v", id, err)
	}
	rotated := mustRotate(t, path, newClock(), 0)
	if _, err := rotated.DeviceMinter().Check(raw, testUser, testGen); err != nil {
		t.Fatalf("after a signing-key rotation: %v", err)
	}
	other := mustLoadOrCreate(t, keyFilePath(t), newClock())
	if _, err := other.DeviceMinter().Check(raw, testUser, testGen); !errors.Is(err, ErrInvalidDeviceToken) {
		t.Fatalf("another key file's instance accepted the token: %v", err)
	}
}
