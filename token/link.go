package token

import (
	"encoding/base64"
	"fmt"
	"io"
)

// linkTokenBytes is a link token's entropy: 256 bits, like a session's first refresh token.
const linkTokenBytes = 32

// MaxLinkTokenLen bounds a presented link token: anything longer was not minted here.
const MaxLinkTokenLen = 64

// NewLinkToken mints a token for a mail's link (a password reset, an address verification): 256
// random bits, URL-safe, and the hash it is stored and looked up by.
func NewLinkToken(r io.Reader) (raw, hash string, err error) {
	b := make([]byte, linkTokenBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", "", fmt.Errorf("token: random source failed: %w", err)
	}
	raw = base64.RawURLEncoding.EncodeToString(b)
	return raw, HashLinkToken(raw), nil
}

// HashLinkToken returns the form a link token is stored in: its hex SHA-256, as for refresh tokens
// (random tokens need no salt or slow KDF).
func HashLinkToken(raw string) string { return HashRefreshToken(raw) }
