package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// keyFileVersion is the format version written to and required of key files.
const keyFileVersion = 1

// maxKeyFileSize guards against reading something that is plainly not a key file.
const maxKeyFileSize = 1 << 20

// keyFile is the on-disk format:
//
//	{
//	  "version": 1,
//	  "keys": [
//	    {"kid": "…", "alg": "ES256", "current": true, "createdAt": "2025-01-02T03:04:05Z",
//	     "privateKey": "-----BEGIN PRIVATE KEY-----\n…PKCS#8…\n-----END PRIVATE KEY-----\n"},
//	    {"kid": "…", "alg": "ES256", "createdAt": "…", "retiredAt": "…", "privateKey": "…"}
//	  ],
//	  "refreshSecret": "…base64url of 32 random bytes…"
//	}
//
// Exactly one key is current (it signs); the others only verify until they are pruned. The refresh
// secret derives and authenticates refresh tokens (see RefreshMinter); it is made once and never
// rotated, since changing it would end every session. Files written before it existed gain one the
// first time LoadOrCreateKeyFile or RotateKeyFile opens them.
type keyFile struct {
	Version       int            `json:"version"`
	Keys          []keyFileEntry `json:"keys"`
	RefreshSecret string         `json:"refreshSecret,omitempty"`
}

type keyFileEntry struct {
	KID        string    `json:"kid"`
	Alg        string    `json:"alg"`
	Current    bool      `json:"current,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	RetiredAt  time.Time `json:"retiredAt,omitzero"`
	PrivateKey string    `json:"privateKey"` // PKCS#8 PEM
}

func (e keyFileEntry) String() string {
	return fmt.Sprintf("keyFileEntry{kid: %q, current: %t, privateKey: %s}", e.KID, e.Current, redacted)
}
func (e keyFileEntry) GoString() string { return e.String() }

// LogValue matters here more than String: slog's JSON handler would otherwise marshal the entry with
// its json tags, private key included.
func (e keyFileEntry) LogValue() slog.Value { return slog.StringValue(e.String()) }

// LoadKeyFile reads the key file at path. It never creates one: production points every instance at
// a file made beforehand, and an instance that silently made its own keys would issue tokens the
// others reject.
func LoadKeyFile(path string, clock fluxauth.Clock) (*KeySet, error) {
	if clock == nil {
		clock = fluxauth.SystemClock{}
	}
	st, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	ks := &KeySet{path: path, clock: clock}
	ks.state.Store(st)
	return ks, nil
}

// LoadOrCreateKeyFile reads the key file at path, or creates it with one new P-256 key when it does
// not exist. Processes that start at once on a fresh path all end up with the same single key: the
// file appears atomically (hard link of a complete temporary file) and a process that loses the race
// reads the winner's file. r supplies randomness (nil means crypto/rand); note that since Go 1.26
// ecdsa key generation draws from the system CSPRNG whatever r is.
func LoadOrCreateKeyFile(path string, clock fluxauth.Clock, r io.Reader) (*KeySet, error) {
	if clock == nil {
		clock = fluxauth.SystemClock{}
	}
	ks, err := LoadKeyFile(path, clock)
	if errors.Is(err, errNoRefreshSecret) {
		return upgradeKeyFile(path, clock, r)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return ks, err
	}
	kf, err := newKeyFile(clock.Now(), r)
	if err != nil {
		return nil, err
	}
	data, err := marshalKeyFile(kf)
	if err != nil {
		return nil, err
	}
	err = createFileExclusive(path, data)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	// Whether we wrote the file or another process did, the file is now the truth.
	return loadAfterCreate(path, clock, err != nil)
}

// upgradeKeyFile adds a refresh secret to a key file written before secrets existed. The lock that
// rotations take makes the first process to get there write the one secret every other process reads.
func upgradeKeyFile(path string, clock fluxauth.Clock, r io.Reader) (*KeySet, error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("token: lock key file to add its refresh secret: %w", err)
	}
	defer unlock()
	kf, err := readKeyFileRaw(path)
	if err != nil {
		return nil, err
	}
	if kf.RefreshSecret == "" {
		if kf.RefreshSecret, err = newRefreshSecret(r); err != nil {
			return nil, err
		}
		if err := writeKeyFile(path, kf); err != nil {
			return nil, err
		}
	}
	return LoadKeyFile(path, clock)
}

// writeKeyFile validates kf and swaps it in atomically.
func writeKeyFile(path string, kf *keyFile) error {
	if _, err := parseKeyFile(kf); err != nil {
		return fmt.Errorf("token: key file %s would be invalid: %w", path, err)
	}
	data, err := marshalKeyFile(kf)
	if err != nil {
		return err
	}
	return replaceFile(path, data)
}

// loadAfterCreate reads a file just created. Only when the exclusive create fell back to O_EXCL
// (no hard links on this filesystem) can a loser see the winner's file half written; it retries
// briefly in that case.
func loadAfterCreate(path string, clock fluxauth.Clock, lost bool) (*KeySet, error) {
	for attempt := 0; ; attempt++ {
		ks, err := LoadKeyFile(path, clock)
		if err == nil || !lost || !errors.Is(err, errIncompleteKeyFile) || attempt >= 40 {
			return ks, err
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// RotateKeyFile adds a new key to the file at path and makes it current; the previous current key is
// retired now and keeps verifying. Keys retired longer than retention ago are dropped: pass the
// longest access-token lifetime plus the verification leeway (Issuer.KeyRetention), so no key leaves
// while a token it signed can still be accepted. A missing file is created first. Concurrent
// rotations of one file are serialised by a lock on path+".lock", so none loses another's key.
// Running services see the new key after their next Reload.
func RotateKeyFile(path string, clock fluxauth.Clock, r io.Reader, retention time.Duration) (*KeySet, error) {
	if clock == nil {
		clock = fluxauth.SystemClock{}
	}
	if retention < 0 {
		return nil, fmt.Errorf("token: key retention %v is negative", retention)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("token: lock key file for rotation: %w", err)
	}
	defer unlock()

	kf, err := readKeyFileRaw(path)
	if errors.Is(err, fs.ErrNotExist) {
		kf, err = newKeyFile(clock.Now(), r) // created, then rotated like any other
	}
	if err != nil {
		return nil, err
	}
	if kf.RefreshSecret == "" {
		if kf.RefreshSecret, err = newRefreshSecret(r); err != nil {
			return nil, err
		}
	}
	now := clock.Now().UTC()
	entry, err := newKeyEntry(now, r)
	if err != nil {
		return nil, err
	}
	keys := []keyFileEntry{entry}
	for _, k := range kf.Keys {
		if k.Current || k.RetiredAt.IsZero() {
			k.Current, k.RetiredAt = false, now
		}
		if now.Sub(k.RetiredAt) > retention {
			continue // retired long enough that every token it signed has expired
		}
		keys = append(keys, k)
	}
	kf.Keys = keys
	if err := writeKeyFile(path, kf); err != nil {
		return nil, err
	}
	return LoadKeyFile(path, clock)
}

var (
	errIncompleteKeyFile = errors.New("key file is empty or incomplete")
	errNoRefreshSecret   = errors.New("has no refreshSecret (run \"fluxauth keys rotate\" to add one)")
)

// newKeyFile returns the contents of a new key file: one current key and a refresh secret.
func newKeyFile(now time.Time, r io.Reader) (*keyFile, error) {
	entry, err := newKeyEntry(now, r)
	if err != nil {
		return nil, err
	}
	secret, err := newRefreshSecret(r)
	if err != nil {
		return nil, err
	}
	return &keyFile{Version: keyFileVersion, Keys: []keyFileEntry{entry}, RefreshSecret: secret}, nil
}

func newRefreshSecret(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, RefreshSecretBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("token: read randomness for the refresh secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func newKeyEntry(now time.Time, r io.Reader) (keyFileEntry, error) {
	if r == nil {
		r = rand.Reader
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return keyFileEntry{}, fmt.Errorf("token: generate P-256 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return keyFileEntry{}, fmt.Errorf("token: encode private key: %w", err)
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return keyFileEntry{}, err
	}
	return keyFileEntry{
		KID:        kid,
		Alg:        AlgES256,
		Current:    true,
		CreatedAt:  now.UTC(),
		PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
	}, nil
}

func marshalKeyFile(kf *keyFile) ([]byte, error) {
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("token: encode key file: %w", err)
	}
	return append(data, '\n'), nil
}

func readKeyFileRaw(path string) (*keyFile, error) {
	kf, _, err := readKeyFileBytes(path)
	return kf, err
}

func readKeyFileBytes(path string) (*keyFile, [sha256.Size]byte, error) {
	var digest [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return nil, digest, fmt.Errorf("token: open key file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, digest, fmt.Errorf("token: read key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, digest, fmt.Errorf("token: key file %s is larger than %d bytes", path, maxKeyFileSize)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, digest, fmt.Errorf("token: key file %s: %w", path, errIncompleteKeyFile)
	}
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		// json errors name offsets and types, never the text they choke on, so no key leaks here.
		var syn *json.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, digest, fmt.Errorf("token: key file %s: %w: %v", path, errIncompleteKeyFile, err)
		}
		return nil, digest, fmt.Errorf("token: key file %s is not valid: %v", path, err)
	}
	return &kf, sha256.Sum256(data), nil
}

func readKeyFile(path string) (*keyState, error) {
	kf, digest, err := readKeyFileBytes(path)
	if err != nil {
		return nil, err
	}
	st, err := parseKeyFile(kf)
	if err != nil {
		return nil, fmt.Errorf("token: key file %s: %w", path, err)
	}
	st.digest = digest
	return st, nil
}

// parseKeyFile validates kf and builds the verification snapshot. Its errors describe which key is
// wrong by position and kid only.
func parseKeyFile(kf *keyFile) (*keyState, error) {
	if kf.Version != keyFileVersion {
		return nil, fmt.Errorf("unsupported version %d (want %d)", kf.Version, keyFileVersion)
	}
	if len(kf.Keys) == 0 {
		return nil, errors.New("holds no keys")
	}
	st := &keyState{byKID: make(map[string]*signingKey, len(kf.Keys))}
	var others []*signingKey
	for i, e := range kf.Keys {
		k, err := parseEntry(e)
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, e.KID, err)
		}
		if _, dup := st.byKID[k.kid]; dup {
			return nil, fmt.Errorf("key %d: kid %q appears twice", i, k.kid)
		}
		st.byKID[k.kid] = k
		if e.Current {
			if st.current != nil {
				return nil, fmt.Errorf("keys %q and %q are both current", st.current.kid, k.kid)
			}
			st.current = k
		} else {
			others = append(others, k)
		}
	}
	if st.current == nil {
		return nil, errors.New("no key is marked current")
	}
	slices.SortStableFunc(others, func(a, b *signingKey) int { return b.createdAt.Compare(a.createdAt) })
	keys := append([]*signingKey{st.current}, others...)
	jwks := jwkSet{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		st.kids = append(st.kids, k.kid)
		j, err := publicJWK(k.kid, k.pub)
		if err != nil {
			return nil, err
		}
		jwks.Keys = append(jwks.Keys, j)
	}
	var err error
	if st.jwks, err = json.Marshal(jwks); err != nil {
		return nil, fmt.Errorf("encode JWKS: %w", err)
	}
	// Checked last, so that a file missing only its secret is one LoadOrCreateKeyFile may upgrade.
	if kf.RefreshSecret == "" {
		return nil, errNoRefreshSecret
	}
	st.refresh, err = base64.RawURLEncoding.DecodeString(kf.RefreshSecret)
	if err != nil || len(st.refresh) != RefreshSecretBytes {
		return nil, fmt.Errorf("refreshSecret is not %d bytes of base64url", RefreshSecretBytes)
	}
	return st, nil
}

func parseEntry(e keyFileEntry) (*signingKey, error) {
	if e.KID == "" {
		return nil, errors.New("kid is empty")
	}
	if e.Alg != AlgES256 {
		return nil, fmt.Errorf("alg %q is not %s", e.Alg, AlgES256)
	}
	if e.Current && !e.RetiredAt.IsZero() {
		return nil, errors.New("current key has a retiredAt time")
	}
	block, rest := pem.Decode([]byte(e.PrivateKey))
	if block == nil || block.Type != "PRIVATE KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("privateKey is not one PKCS#8 PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("privateKey: %w", err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("privateKey is not a P-256 ECDSA key")
	}
	return &signingKey{kid: e.KID, priv: priv, pub: &priv.PublicKey, createdAt: e.CreatedAt}, nil
}
