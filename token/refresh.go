package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
)

// Refresh tokens are opaque to clients but structured for the server:
//
//	base64url( version(1) | session id(16) | body(32) | tag(16) )   — 87 URL-safe characters
//
// The body of a session's first token is 256 random bits. The body of every later token is derived:
// HMAC-SHA256(secret, "successor" | presented token). Deriving the successor from the presented
// token, rather than from (session, counter) as GoTrue's v2 tokens do, is what lets every request
// that presents one token get the same successor, across instances and with only hashes stored: any
// instance holding the secret recomputes it from what the client sent, and nothing about the chain
// has to be read back. It also means a spent token whose chain has moved several links on can be
// walked forward to the live token, link by link, without storing any token.
//
// The tag, HMAC-SHA256(secret, "tag" | version | session id | body) cut to 128 bits, authenticates
// the session id, so the session is known (for its rate limit) before the database is asked, and a
// forged or garbled token is refused without a database read.
//
// Tokens minted before this format (43 characters of random base64url) still work until they expire:
// they carry no session id, and their successor is derived from them the same way.
const (
	refreshVersion   = 1
	refreshBodyBytes = 32
	refreshTagBytes  = 16
	refreshRawBytes  = 1 + 16 + refreshBodyBytes + refreshTagBytes
	// RefreshSecretBytes is the length of the secret that derives and authenticates refresh tokens.
	RefreshSecretBytes = 32
	legacyRefreshLen   = 43
)

// ErrMalformedRefreshToken is returned for a token that is neither a well-formed current token with
// a valid tag nor a legacy token.
var ErrMalformedRefreshToken = errors.New("token: malformed refresh token")

// RefreshMinter mints, derives and recognises refresh tokens with a secret that every instance
// shares (it lives in the key file). The secret is never FLUXAUTH_JWT_SECRET: legacy services hold
// that one, and with it they could compute any session's next refresh token.
type RefreshMinter struct {
	secret []byte
}

// NewRefreshMinter returns a minter keyed with secret, which must be RefreshSecretBytes long.
func NewRefreshMinter(secret []byte) (*RefreshMinter, error) {
	if len(secret) != RefreshSecretBytes {
		return nil, fmt.Errorf("token: refresh secret must be %d bytes, not %d", RefreshSecretBytes, len(secret))
	}
	return &RefreshMinter{secret: append([]byte(nil), secret...)}, nil
}

// String keeps the secret out of logs and %v.
func (m *RefreshMinter) String() string { return "token.RefreshMinter{secret: " + redacted + "}" }

// GoString keeps the secret out of %#v.
func (m *RefreshMinter) GoString() string { return m.String() }

// New returns the first token of session sessionID (a UUID), with 256 random bits from r (nil means
// crypto/rand), and its hash.
func (m *RefreshMinter) New(r io.Reader, sessionID string) (raw, hash string, err error) {
	if r == nil {
		r = rand.Reader
	}
	var body [refreshBodyBytes]byte
	if _, err := io.ReadFull(r, body[:]); err != nil {
		return "", "", fmt.Errorf("token: read randomness for refresh token: %w", err)
	}
	return m.encode(sessionID, body[:])
}

// Successor returns the token that presented rotates into, in session sessionID, and its hash. The
// same presented token always gives the same successor.
func (m *RefreshMinter) Successor(presented, sessionID string) (raw, hash string, err error) {
	return m.encode(sessionID, hmacSHA256(m.secret, "fluxauth refresh successor\x00", presented))
}

// SessionID returns the session a current-format token names, after checking its tag in constant
// time. legacy is true, with no session, for a token of the earlier random format, which only the
// database can place. ErrMalformedRefreshToken for anything else.
func (m *RefreshMinter) SessionID(raw string) (sessionID string, legacy bool, err error) {
	if len(raw) == legacyRefreshLen {
		if _, err := base64.RawURLEncoding.DecodeString(raw); err == nil {
			return "", true, nil
		}
		return "", false, ErrMalformedRefreshToken
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) != refreshRawBytes || b[0] != refreshVersion {
		return "", false, ErrMalformedRefreshToken
	}
	if !hmac.Equal(b[1+16+refreshBodyBytes:], m.tag(b[:1+16+refreshBodyBytes])) {
		return "", false, ErrMalformedRefreshToken
	}
	id, err := uuid.FromBytes(b[1:17])
	if err != nil {
		return "", false, ErrMalformedRefreshToken
	}
	return id.String(), false, nil
}

func (m *RefreshMinter) encode(sessionID string, body []byte) (raw, hash string, err error) {
	id, err := uuid.Parse(sessionID)
	if err != nil {
		return "", "", fmt.Errorf("token: refresh token session %q is not a UUID", sessionID)
	}
	b := make([]byte, 0, refreshRawBytes)
	b = append(b, refreshVersion)
	b = append(b, id[:]...)
	b = append(b, body[:refreshBodyBytes]...)
	b = append(b, m.tag(b)...)
	raw = base64.RawURLEncoding.EncodeToString(b)
	return raw, HashRefreshToken(raw), nil
}

func (m *RefreshMinter) tag(prefix []byte) []byte {
	return hmacSHA256(m.secret, "fluxauth refresh tag\x00", string(prefix))[:refreshTagBytes]
}

// hmacSHA256 is HMAC-SHA256 under key of a label (which keeps each derivation's inputs apart) and
// the data.
func hmacSHA256(key []byte, label, data string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	mac.Write([]byte(data))
	return mac.Sum(nil)
}

// HashRefreshToken returns the hex SHA-256 of token, the form refresh tokens are stored and looked up
// in. The token is already high in entropy (random, or an HMAC), so no salt or slow KDF is needed.
func HashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
