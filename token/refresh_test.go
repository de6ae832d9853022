package token

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"regexp"
	"testing"
)

func TestRefreshTokenIs256RandomBitsInBase64URLWithoutPadding(t *testing.T) {
	random := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, 11)[:32]
	tok, hash, err := NewRefreshToken(bytes.NewReader(random))
	if err != nil {
		t.Fatal(err)
	}
	if tok != base64.RawURLEncoding.EncodeToString(random) {
		t.Fatalf("token %q is not the base64url of the injected bytes", tok)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(tok) {
		t.Fatalf("token %q is not 43 unpadded base64url characters", tok)
	}
	sum := sha256.Sum256([]byte(tok))
	if hash != hex.EncodeToString(sum[:]) || hash != HashRefreshToken(tok) {
		t.Fatalf("hash %q is not the hex SHA-256 of the token", hash)
	}
}

func TestRefreshTokensAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok, hash, err := NewRefreshToken(nil)
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
	_, _, err := NewRefreshToken(bytes.NewReader(make([]byte, 31)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v; want the short read reported", err)
	}
}

func TestHashRefreshTokenIsHexSHA256(t *testing.T) {
	// echo -n abc | sha256sum
	if got := HashRefreshToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashRefreshToken(abc) = %s", got)
	}
}
