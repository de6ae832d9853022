package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// encryptionKeyBytes is the length of an encryption key: AES-256.
const encryptionKeyBytes = 32

// sealedPrefix starts every sealed secret: the format's version, then the kid and the payload, each
// after a dot.
const sealedPrefix = "v1."

// ErrSealedSecretInvalid is wrapped by every error of Sealer.Open: the sealed secret is malformed,
// names a key the file does not hold, was altered, or was sealed for another context. The errors
// carry no key material and no plaintext.
var ErrSealedSecretInvalid = errors.New("token: sealed secret is invalid")

// encryptionKey is one parsed encryption key of the set.
type encryptionKey struct {
	kid       string
	key       []byte
	createdAt time.Time
}

func (k *encryptionKey) String() string {
	return fmt.Sprintf("encryptionKey{kid: %q, key: %s}", k.kid, redacted)
}
func (k *encryptionKey) GoString() string     { return k.String() }
func (k *encryptionKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

func (k *encryptionKey) aead() (cipher.AEAD, error) {
	block, err := aes.NewCipher(k.key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Sealer encrypts secrets kept at rest (TOTP secrets) with AES-256-GCM under the key set's encryption
// keys. A sealed secret is
//
//	v1.<kid>.<base64url(nonce || ciphertext || tag)>
//
// with a random 12-byte nonce, and the context given to Seal authenticated with it, so a sealed secret
// moved to another row (another context) does not open. It names its key: after a rotation, secrets
// sealed under an older key still open (Open reports they are not current, and the caller seals them
// again). Get one from KeySet.Sealer (the zero Sealer is not usable); it is safe for concurrent use.
type Sealer struct {
	ks *KeySet
}

// Seal encrypts plaintext under the current encryption key, bound to context (for example
// "mfa-factor:"+factorID), which must not be empty.
func (s *Sealer) Seal(plaintext []byte, context string) (string, error) {
	if context == "" {
		return "", errors.New("token: seal: the context is empty")
	}
	k := s.ks.state.Load().encCurrent
	aead, err := k.aead()
	if err != nil {
		return "", fmt.Errorf("token: seal: %w", err)
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, out); err != nil {
		return "", fmt.Errorf("token: seal: read randomness for the nonce: %w", err)
	}
	out = aead.Seal(out, out, plaintext, []byte(context))
	return sealedPrefix + k.kid + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a secret that Seal sealed for the same context. current reports whether it was
// sealed under the current encryption key; when it is false the caller should seal the plaintext
// again and store that. A kid the set does not hold makes a file-backed set re-read its file (at most
// once per UnknownKIDReloadInterval), since another instance may have rotated it. Every error wraps
// ErrSealedSecretInvalid.
func (s *Sealer) Open(sealed, context string) (plaintext []byte, current bool, err error) {
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return nil, false, fmt.Errorf("%w: not a v1 sealed secret", ErrSealedSecretInvalid)
	}
	kid, payload, ok := strings.Cut(rest, ".")
	if !ok || !validEncryptionKID(kid) {
		return nil, false, fmt.Errorf("%w: malformed", ErrSealedSecretInvalid)
	}
	data, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil {
		return nil, false, fmt.Errorf("%w: payload is not base64url", ErrSealedSecretInvalid)
	}
	k, err := lookupOrReload(s.ks, &s.ks.lastSealKIDReloadAt,
		func(st *keyState) *encryptionKey { return st.encByKID[kid] })
	if err != nil {
		return nil, false, fmt.Errorf("%w: encryption key %q: %v", ErrSealedSecretInvalid, kid, err)
	}
	aead, err := k.aead()
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrSealedSecretInvalid, err)
	}
	if len(data) < aead.NonceSize()+aead.Overhead() {
		return nil, false, fmt.Errorf("%w: too short", ErrSealedSecretInvalid)
	}
	nonce, ciphertext := data[:aead.NonceSize()], data[aead.NonceSize():]
	plaintext, err = aead.Open(nil, nonce, ciphertext, []byte(context))
	if err != nil {
		return nil, false, fmt.Errorf("%w: authentication failed (altered, or sealed for another context)", ErrSealedSecretInvalid)
	}
	return plaintext, k.kid == s.ks.state.Load().encCurrent.kid, nil
}

// String describes the sealer without key material.
func (s *Sealer) String() string {
	if s == nil || s.ks == nil || s.ks.state.Load() == nil {
		return "token.Sealer(empty)"
	}
	st := s.ks.state.Load()
	return fmt.Sprintf("token.Sealer{current: %q, kids: %q, keys: %s}", st.encCurrent.kid, st.encKIDs, redacted)
}

// GoString keeps %#v from printing the keys.
func (s *Sealer) GoString() string { return s.String() }

// LogValue keeps slog from printing the keys.
func (s *Sealer) LogValue() slog.Value { return slog.StringValue(s.String()) }
