package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// refreshTokenBytes is 256 bits: far beyond guessing, and the hash stored in place of the token needs
// no salt or slow KDF because the input is already uniformly random.
const refreshTokenBytes = 32

// NewRefreshToken returns a new opaque refresh token (256 random bits from r, base64url without
// padding: 43 URL-safe characters) and its hash, which is what storage keeps. r nil means crypto/rand.
func NewRefreshToken(r io.Reader) (token, hash string, err error) {
	if r == nil {
		r = rand.Reader
	}
	var b [refreshTokenBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", fmt.Errorf("token: read randomness for refresh token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashRefreshToken(token), nil
}

// HashRefreshToken returns the hex SHA-256 of token, the form refresh tokens are stored and looked up
// in.
func HashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
