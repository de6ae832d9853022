package token

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
)

const testSession = "0190f6a2-7b3c-7d4e-8f00-112233445566"

func testMinter(tb testing.TB, fill byte) *RefreshMinter {
	tb.Helper()
	m, err := NewRefreshMinter(bytes.Repeat([]byte{fill}, RefreshSecretBytes))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestNewRefreshTokenCarriesItsSessionAnd256RandomBits(t *testing.T) {
	m := testMinter(t, 1)
	random := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, 11)[:32]
	tok, hash, err := m.New(bytes.NewReader(random), testSession)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{87}$`).MatchString(tok) {
		t.Fatalf("token %q is not 87 unpadded base64url characters", tok)
	}
	b, _ := base64.RawURLEncoding.DecodeString(tok)
	if !bytes.Equal(b[17:49], random) {
		t.Fatal("the token's body is not the injected random bits")
	}
	sum := sha256.Sum256([]byte(tok))
	if hash != hex.EncodeToString(sum[:]) || hash != HashRefreshToken(tok) {
		t.Fatalf("hash %q is not the hex SHA-256 of the token", hash)
	}
	sid, legacy, err := m.SessionID(tok)
	if err != nil || legacy || sid != testSession {
		t.Fatalf("SessionID = %q, %t, %v; want %q", sid, legacy, err, testSession)
	}
}

func TestRefreshTokensAreUnique(t *testing.T) {
	m := testMinter(t, 1)
	seen := map[string]bool{}
	for range 1000 {
		tok, hash, err := m.New(nil, testSession)
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] || seen[hash] {
			t.Fatal("repeated refresh token")
		}
		seen[tok], seen[hash] = true, true
	}
}

func TestRefreshTokenFailsWhenRandomnessRunsOut(t *testing.T) {
	_, _, err := testMinter(t, 1).New(bytes.NewReader(make([]byte, 31)), testSession)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v; want the short read reported", err)
	}
}

func TestSuccessorIsTheSameForTheSameTokenAndSecret(t *testing.T) {
	a, b := testMinter(t, 1), testMinter(t, 1)
	p, _, _ := a.New(nil, testSession)
	s1, h1, err := a.Successor(p, testSession)
	if err != nil {
		t.Fatal(err)
	}
	s2, h2, _ := b.Successor(p, testSession)
	if s1 != s2 || h1 != h2 {
		t.Fatal("two minters with one secret derive different successors of one token")
	}
	if s1 == p {
		t.Fatal("the successor equals the presented token")
	}
	if sid, _, err := a.SessionID(s1); err != nil || sid != testSession {
		t.Fatalf("the successor does not name its session: %q, %v", sid, err)
	}
	other, _, _ := testMinter(t, 2).Successor(p, testSession)
	if other == s1 {
		t.Fatal("the successor does not depend on the secret")
	}
	next, _, _ := a.Successor(s1, testSession)
	if next == s1 || next == p {
		t.Fatal("the chain repeats itself")
	}
}

func TestSessionIDRefusesForgedAndGarbledTokens(t *testing.T) {
	m := testMinter(t, 1)
	tok, _, _ := m.New(nil, testSession)
	b, _ := base64.RawURLEncoding.DecodeString(tok)
	flip := func(i int) string {
		c := bytes.Clone(b)
		c[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(c)
	}
	forgedByOtherSecret, _, _ := testMinter(t, 2).New(nil, testSession)
	for name, raw := range map[string]string{
		"session id changed":     flip(3),
		"body changed":           flip(30),
		"tag changed":            flip(len(b) - 1),
		"version changed":        flip(0),
		"another secret's token": forgedByOtherSecret,
		"truncated":              tok[:len(tok)-1],
		"not base64url":          strings.Repeat("*", len(tok)),
		"empty":                  "",
		"43 characters, not b64": strings.Repeat("!", 43),
	} {
		if _, _, err := m.SessionID(raw); !errors.Is(err, ErrMalformedRefreshToken) {
			t.Errorf("%s: err = %v; want ErrMalformedRefreshToken", name, err)
		}
	}
}

func TestLegacyRandomTokensAreRecognisedWithoutASession(t *testing.T) {
	legacy := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	sid, isLegacy, err := testMinter(t, 1).SessionID(legacy)
	if err != nil || !isLegacy || sid != "" {
		t.Fatalf("SessionID(legacy) = %q, %t, %v", sid, isLegacy, err)
	}
}

func TestRefreshMinterNeedsA256BitSecretAndNeverPrintsIt(t *testing.T) {
	if _, err := NewRefreshMinter(make([]byte, 16)); err == nil {
		t.Fatal("a 128-bit secret was accepted")
	}
	m := testMinter(t, 'k')
	if s := m.String() + m.GoString(); strings.Contains(s, "kkkk") {
		t.Fatalf("the secret is printed: %s", s)
	}
}

func TestHashRefreshTokenIsHexSHA256(t *testing.T) {
	// echo -n abc | sha256sum
	if got := HashRefreshToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashRefreshToken(abc) = %s", got)
	}
}
