package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Device tokens are OWASP's "device cookies": a device that signed in to an account with its
// password once gets one, and logins that carry it are counted on the token's own failure budget
// rather than on the account's lockout, so an attacker's guesses cannot lock the owner's known
// devices out. They authenticate nothing on their own (the password is still required), which is
// why they need no database lookup to be recognised as genuine, only to find their budget:
//
//	base64url( version(1) | token id(16) | tag(32) )   — 66 URL-safe characters
//
// The tag is HMAC-SHA256(device key, "fluxauth device token" | version | token id | user id |
// password generation): it binds the token to one account and to the account's password as it was
// when the token was minted. When the password changes, every token minted before stops verifying,
// with nothing stored or revoked; the caller chooses what "generation" is.
//
// The device key is derived from the refresh secret of the key file, HMAC-SHA256(refresh secret,
// "fluxauth device-token key"), rather than kept as a second secret in the file: every instance
// already shares that secret, so no key-file format change, rotation step or upgrade of existing
// files is needed, and the distinct label keeps a device tag from ever being a refresh tag or a
// refresh successor (those HMACs are under the secret itself, with other labels). The cost is that
// the two cannot be rotated apart; the refresh secret is never rotated (it would end every
// session), and losing every device token only sends devices back to plain logins.
const (
	deviceVersion  = 1
	deviceTagBytes = sha256.Size
	deviceRawBytes = 1 + 16 + deviceTagBytes
	// MaxDeviceTokenLen bounds what a caller need look at: every device token is this long.
	MaxDeviceTokenLen = (deviceRawBytes*8 + 5) / 6
)

// ErrInvalidDeviceToken is returned for a device token that is malformed, or whose tag does not
// verify for the account and password generation it was presented for.
var ErrInvalidDeviceToken = errors.New("token: invalid device token")

// DeviceMinter mints and checks device tokens with a key derived from the shared refresh secret.
type DeviceMinter struct {
	key []byte
}

// NewDeviceMinter returns a minter keyed with a key derived from refreshSecret, which must be
// RefreshSecretBytes long.
func NewDeviceMinter(refreshSecret []byte) (*DeviceMinter, error) {
	if len(refreshSecret) != RefreshSecretBytes {
		return nil, fmt.Errorf("token: refresh secret must be %d bytes, not %d", RefreshSecretBytes, len(refreshSecret))
	}
	mac := hmac.New(sha256.New, refreshSecret)
	mac.Write([]byte("fluxauth device-token key"))
	return &DeviceMinter{key: mac.Sum(nil)}, nil
}

// String keeps the key out of logs and %v.
func (m *DeviceMinter) String() string { return "token.DeviceMinter{key: " + redacted + "}" }

// GoString keeps the key out of %#v.
func (m *DeviceMinter) GoString() string { return m.String() }

// Mint returns the device token tokenID (a UUID) for the user userID whose password is at
// generation.
func (m *DeviceMinter) Mint(tokenID, userID, generation string) (string, error) {
	id, err := uuid.Parse(tokenID)
	if err != nil {
		return "", fmt.Errorf("token: device token id %q is not a UUID", tokenID)
	}
	b := make([]byte, 0, deviceRawBytes)
	b = append(b, deviceVersion)
	b = append(b, id[:]...)
	b = append(b, m.tag(b, userID, generation)...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Check returns the ID of the device token raw if it was minted for userID at generation, comparing
// the tag in constant time; ErrInvalidDeviceToken otherwise (forged, altered, another account's, or
// from before the password changed: the answer does not say which).
func (m *DeviceMinter) Check(raw, userID, generation string) (tokenID string, err error) {
	if len(raw) != MaxDeviceTokenLen {
		return "", ErrInvalidDeviceToken
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(raw)
	if err != nil || len(b) != deviceRawBytes || b[0] != deviceVersion {
		return "", ErrInvalidDeviceToken
	}
	if !hmac.Equal(b[17:], m.tag(b[:17], userID, generation)) {
		return "", ErrInvalidDeviceToken
	}
	id, err := uuid.FromBytes(b[1:17])
	if err != nil {
		return "", ErrInvalidDeviceToken
	}
	return id.String(), nil
}

// tag authenticates prefix (version and token id) for the account and password generation. Each
// variable part is length-prefixed, so no two inputs run together into one.
func (m *DeviceMinter) tag(prefix []byte, userID, generation string) []byte {
	mac := hmac.New(sha256.New, m.key)
	mac.Write([]byte("fluxauth device token\x00"))
	mac.Write(prefix)
	for _, part := range []string{userID, generation} {
		mac.Write(binary.BigEndian.AppendUint32(nil, uint32(len(part))))
		mac.Write([]byte(part))
	}
	return mac.Sum(nil)
}
