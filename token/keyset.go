package token

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// AlgES256 is the only asymmetric algorithm the key set holds; AlgHS256 is the legacy shared-secret mode.
const (
	AlgES256 = "ES256"
	AlgHS256 = "HS256"
)

// UnknownKIDReloadInterval bounds how often a file-backed KeySet re-reads its file because a token
// named a kid it does not know. Without the bound, anyone could make every request read the disk by
// sending made-up kids; with it, a key rotated in by another instance is picked up within seconds.
const UnknownKIDReloadInterval = 5 * time.Second

const redacted = "[redacted]"

// signingKey is one parsed key of the set.
type signingKey struct {
	kid       string
	priv      *ecdsa.PrivateKey
	pub       *ecdsa.PublicKey
	createdAt time.Time
}

func (k *signingKey) String() string {
	return fmt.Sprintf("signingKey{kid: %q, privateKey: %s}", k.kid, redacted)
}
func (k *signingKey) GoString() string     { return k.String() }
func (k *signingKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// keyState is an immutable snapshot of the set; Reload swaps in a new one, so verification reads it
// without locks.
type keyState struct {
	current *signingKey
	byKID   map[string]*signingKey
	kids    []string // current first, then newest first
	jwks    []byte
	digest  [sha256.Size]byte // of the file contents, so Reload can tell whether anything changed
	refresh []byte            // the refresh-token secret

	encCurrent *encryptionKey            // seals
	encByKID   map[string]*encryptionKey // open
	encKIDs    []string                  // current first, then newest first
}

// KeySet holds the ES256 signing keys: the current one, which signs, and retired ones that still
// verify tokens issued before a rotation. It also holds the refresh secret and the encryption keys
// that seal secrets at rest (Sealer). A KeySet loaded from a file is shared by every instance
// that points at the file; Reload (and, rate-limited, a token with an unknown kid) picks up a rotation
// made by another process. The zero KeySet is not usable; build one with LoadKeyFile,
// LoadOrCreateKeyFile, RotateKeyFile or GenerateKeySet.
type KeySet struct {
	path  string // "" for a set that lives only in memory
	clock fluxauth.Clock
	state atomic.Pointer[keyState]

	reloadMu            sync.Mutex
	lastKIDReloadAt     time.Time // guarded by reloadMu; for an unknown signing kid
	lastSealKIDReloadAt time.Time // guarded by reloadMu; for an unknown encryption kid (Sealer.Open)
}

// GenerateKeySet returns a set holding one new key that lives only in memory, for tests and for
// single-process setups that accept tokens becoming invalid at restart.
func GenerateKeySet(clock fluxauth.Clock, r io.Reader) (*KeySet, error) {
	if clock == nil {
		clock = fluxauth.SystemClock{}
	}
	kf, err := newKeyFile(clock.Now(), r)
	if err != nil {
		return nil, err
	}
	st, err := parseKeyFile(kf)
	if err != nil {
		return nil, err
	}
	ks := &KeySet{clock: clock}
	ks.state.Store(st)
	return ks, nil
}

// Reload re-reads the key file and reports whether its contents changed. On error the set keeps the
// keys it had, so a half-deployed or unreadable file never takes signing down. serve calls it on a
// short timer (keyReloadEvery in package app) so that every instance starts signing with a
// rotated-in key within seconds; verification does not wait for that, because a token with an
// unknown kid triggers a rate-limited reload on its own. Reload of an in-memory set does nothing.
func (ks *KeySet) Reload() (changed bool, err error) {
	if ks.path == "" {
		return false, nil
	}
	ks.reloadMu.Lock()
	defer ks.reloadMu.Unlock()
	return ks.reloadLocked()
}

// reloadLocked does Reload's work with reloadMu held, so two reloads cannot interleave and leave the
// older file's keys in place.
func (ks *KeySet) reloadLocked() (changed bool, err error) {
	st, err := readKeyFile(ks.path)
	if err != nil {
		return false, err
	}
	old := ks.state.Load()
	if old != nil && old.digest == st.digest {
		return false, nil
	}
	ks.state.Store(st)
	return true, nil
}

// CurrentKID returns the kid that new tokens are signed with.
func (ks *KeySet) CurrentKID() string { return ks.state.Load().current.kid }

// KIDs returns the kids of every key in the set, the current one first.
func (ks *KeySet) KIDs() []string { return slices.Clone(ks.state.Load().kids) }

// JWKS returns the JSON Web Key Set of the public keys, {"keys":[…]}, each with kty EC, crv P-256, x,
// y, kid, alg ES256 and use sig. It contains no private material.
func (ks *KeySet) JWKS() []byte { return slices.Clone(ks.state.Load().jwks) }

func (ks *KeySet) current() *signingKey { return ks.state.Load().current }

// RefreshMinter returns the refresh-token minter keyed with the file's refresh secret.
func (ks *KeySet) RefreshMinter() *RefreshMinter {
	m, err := NewRefreshMinter(ks.state.Load().refresh)
	if err != nil {
		panic(err) // parseKeyFile admits only secrets of the right length
	}
	return m
}

// DeviceMinter returns the device-token minter keyed with a key derived from the file's refresh
// secret (see DeviceMinter for why it is derived rather than a second secret).
func (ks *KeySet) DeviceMinter() *DeviceMinter {
	m, err := NewDeviceMinter(ks.state.Load().refresh)
	if err != nil {
		panic(err) // parseKeyFile admits only secrets of the right length
	}
	return m
}

// EncryptionKIDs returns the kids of every encryption key in the set, the current one first.
func (ks *KeySet) EncryptionKIDs() []string { return slices.Clone(ks.state.Load().encKIDs) }

// Sealer returns the sealer of secrets at rest under the set's encryption keys. It reads the set on
// every call, so it seals with the current key and opens with the keys of the latest Reload.
func (ks *KeySet) Sealer() *Sealer { return &Sealer{ks: ks} }

// verificationKey returns the key with kid, reloading a file-backed set at most once per
// UnknownKIDReloadInterval when the kid is unknown.
func (ks *KeySet) verificationKey(kid string) (*signingKey, error) {
	return lookupOrReload(ks, &ks.lastKIDReloadAt, func(st *keyState) *signingKey { return st.byKID[kid] })
}

// lookupOrReload returns what lookup finds in the set. When it finds nothing (nil) in a file-backed
// set, the file is read again, at most once per UnknownKIDReloadInterval as timed by *last (guarded
// by reloadMu), and lookup tried once more; still nothing is errUnknownKID.
func lookupOrReload[K any](ks *KeySet, last *time.Time, lookup func(*keyState) *K) (*K, error) {
	if k := lookup(ks.state.Load()); k != nil {
		return k, nil
	}
	if ks.path == "" {
		return nil, errUnknownKID
	}
	ks.reloadMu.Lock()
	defer ks.reloadMu.Unlock()
	// A request that waited for the lock may find the key loaded by the one before it.
	if k := lookup(ks.state.Load()); k != nil {
		return k, nil
	}
	now := ks.clock.Now()
	if !last.IsZero() && now.Sub(*last) < UnknownKIDReloadInterval {
		return nil, errUnknownKID
	}
	*last = now
	if _, err := ks.reloadLocked(); err != nil {
		return nil, fmt.Errorf("%w (key file reload failed: %v)", errUnknownKID, err)
	}
	if k := lookup(ks.state.Load()); k != nil {
		return k, nil
	}
	return nil, errUnknownKID
}

// String describes the set without key material.
func (ks *KeySet) String() string {
	if ks == nil {
		return "token.KeySet(nil)"
	}
	st := ks.state.Load()
	if st == nil {
		return "token.KeySet{}"
	}
	return fmt.Sprintf("token.KeySet{path: %q, current: %q, kids: %q, privateKeys: %s}",
		ks.path, st.current.kid, st.kids, redacted)
}

// GoString keeps %#v from printing the private keys.
func (ks *KeySet) GoString() string { return ks.String() }

// LogValue keeps slog from printing the private keys.
func (ks *KeySet) LogValue() slog.Value {
	if ks == nil || ks.state.Load() == nil {
		return slog.StringValue("token.KeySet(empty)")
	}
	st := ks.state.Load()
	return slog.GroupValue(
		slog.String("path", ks.path),
		slog.String("current", st.current.kid),
		slog.Any("kids", st.kids),
		slog.String("privateKeys", redacted),
	)
}

var errUnknownKID = errors.New("unknown kid")
