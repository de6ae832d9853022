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
//	  "refreshSecret": "…base64url of 32 random bytes…",
//	  "encryptionKeys": [
//	    {"kid": "…", "current": true, "createdAt": "…", "key": "…base64url of 32 random bytes…"},
//	    {"kid": "…", "createdAt": "…", "key": "…"}
//	  ]
//	}
//
// Exactly one key is current (it signs); the others only verify until they are pruned. The refresh
// secret derives and authenticates refresh tokens (see RefreshMinter); it is made once and never
// rotated, since changing it would end every session. The encryption keys seal secrets kept at rest
// (see Sealer): exactly one is current and seals; a rotation adds a new current one and keeps every
// other, never pruned, because a sealed secret names its key and must keep opening. Files written
// before the refresh secret or the encryption keys existed gain them the first time
// LoadOrCreateKeyFile or RotateKeyFile opens them.
type keyFile struct {
	Version        int                  `json:"version"`
	Keys           []keyFileEntry       `json:"keys"`
	RefreshSecret  string               `json:"refreshSecret,omitempty"`
	EncryptionKeys []encryptionKeyEntry `json:"encryptionKeys,omitempty"`
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

// encryptionKeyEntry is one AES-256 key of the file, for sealing secrets at rest.
type encryptionKeyEntry struct {
	KID       string    `json:"kid"`
	Current   bool      `json:"current,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	Key       string    `json:"key"` // base64url (unpadded) of encryptionKeyBytes bytes
}

func (e encryptionKeyEntry) String() string {
	return fmt.Sprintf("encryptionKeyEntry{kid: %q, current: %t, key: %s}", e.KID, e.Current, redacted)
}
func (e encryptionKeyEntry) GoString() string { return e.String() }

// LogValue keeps slog's JSON handler from marshalling the entry, key included, by its json tags.
func (e encryptionKeyEntry) LogValue() slog.Value { return slog.StringValue(e.String()) }

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
	if errors.As(err, new(missingSecretsError)) {
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

// upgradeKeyFile adds a refresh secret and an encryption key to a key file written before they
// existed. The lock that rotations take makes the first process to get there write the one secret
// and key every other process reads.
func upgradeKeyFile(path string, clock fluxauth.Clock, r io.Reader) (*KeySet, error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("token: lock key file to add its missing secrets: %w", err)
	}
	defer unlock()
	kf, err := readKeyFileRaw(path)
	if err != nil {
		return nil, err
	}
	added, err := addMissingSecrets(kf, clock.Now(), r)
	if err != nil {
		return nil, err
	}
	if added {
		if err := writeKeyFile(path, kf); err != nil {
			return nil, err
		}
	}
	return LoadKeyFile(path, clock)
}

// addMissingSecrets gives kf the refresh secret and the current encryption key that files written
// by older versions lack, and reports whether it added anything.
func addMissingSecrets(kf *keyFile, now time.Time, r io.Reader) (added bool, err error) {
	if kf.RefreshSecret == "" {
		if kf.RefreshSecret, err = newRefreshSecret(r); err != nil {
			return false, err
		}
		added = true
	}
	if len(kf.EncryptionKeys) == 0 {
		e, err := newEncryptionKeyEntry(now, r)
		if err != nil {
			return false, err
		}
		kf.EncryptionKeys, added = []encryptionKeyEntry{e}, true
	}
	return added, nil
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
//
// Each rotation also adds a new encryption key and makes it current; the previous ones are kept
// (never pruned, whatever retention says) so that every secret sealed under them still opens.
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
	encEntry, err := newEncryptionKeyEntry(now, r)
	if err != nil {
		return nil, err
	}
	encKeys := []encryptionKeyEntry{encEntry}
	for _, k := range kf.EncryptionKeys {
		k.Current = false
		encKeys = append(encKeys, k)
	}
	kf.EncryptionKeys = encKeys
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

var errIncompleteKeyFile = errors.New("key file is empty or incomplete")

// missingSecretsError is parseKeyFile's verdict on a file that is valid but lacks what versions
// before the refresh secret or the encryption keys did not write: LoadOrCreateKeyFile and
// RotateKeyFile add what is missing, LoadKeyFile refuses the file naming the command that does.
type missingSecretsError struct {
	fields []string // the missing members, in file order
}

func (e missingSecretsError) Error() string {
	them := "one"
	if len(e.fields) > 1 {
		them = "them"
	}
	return fmt.Sprintf("has no %s (run \"fluxauth keys rotate\" to add %s)", strings.Join(e.fields, " and no "), them)
}

// newKeyFile returns the contents of a new key file: one current key, a refresh secret and one
// current encryption key.
func newKeyFile(now time.Time, r io.Reader) (*keyFile, error) {
	entry, err := newKeyEntry(now, r)
	if err != nil {
		return nil, err
	}
	kf := &keyFile{Version: keyFileVersion, Keys: []keyFileEntry{entry}}
	if _, err := addMissingSecrets(kf, now, r); err != nil {
		return nil, err
	}
	return kf, nil
}

func newRefreshSecret(r io.Reader) (string, error) {
	return randomBase64(r, RefreshSecretBytes, "the refresh secret")
}

// encryptionKIDBytes is how many random bytes name an encryption key (16 base64url characters).
const encryptionKIDBytes = 12

func newEncryptionKeyEntry(now time.Time, r io.Reader) (encryptionKeyEntry, error) {
	kid, err := randomBase64(r, encryptionKIDBytes, "an encryption key's kid")
	if err != nil {
		return encryptionKeyEntry{}, err
	}
	key, err := randomBase64(r, encryptionKeyBytes, "an encryption key")
	if err != nil {
		return encryptionKeyEntry{}, err
	}
	return encryptionKeyEntry{KID: kid, Current: true, CreatedAt: now.UTC(), Key: key}, nil
}

// randomBase64 returns n bytes of r (nil means crypto/rand) in unpadded base64url.
func randomBase64(r io.Reader, n int, what string) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("token: read randomness for %s: %w", what, err)
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
	if kf.RefreshSecret != "" {
		st.refresh, err = base64.RawURLEncoding.DecodeString(kf.RefreshSecret)
		if err != nil || len(st.refresh) != RefreshSecretBytes {
			return nil, fmt.Errorf("refreshSecret is not %d bytes of base64url", RefreshSecretBytes)
		}
	}
	if err := parseEncryptionKeys(kf.EncryptionKeys, st); err != nil {
		return nil, err
	}
	// Checked last, so that a file missing only what older versions did not write is one
	// LoadOrCreateKeyFile may upgrade.
	var missing missingSecretsError
	if kf.RefreshSecret == "" {
		missing.fields = append(missing.fields, "refreshSecret")
	}
	if len(kf.EncryptionKeys) == 0 {
		missing.fields = append(missing.fields, "encryptionKeys")
	}
	if len(missing.fields) > 0 {
		return nil, missing
	}
	return st, nil
}

// parseEncryptionKeys validates the encryption keys into st: each kid well formed and unique, each
// key encryptionKeyBytes of base64url, exactly one current. An empty list is left for parseKeyFile to
// report as missing. Errors name keys by position and kid only.
func parseEncryptionKeys(entries []encryptionKeyEntry, st *keyState) error {
	if len(entries) == 0 {
		return nil
	}
	st.encByKID = make(map[string]*encryptionKey, len(entries))
	var others []*encryptionKey
	for i, e := range entries {
		if !validEncryptionKID(e.KID) {
			return fmt.Errorf("encryption key %d: kid %q is not 1 to 64 base64url characters", i, e.KID)
		}
		if _, dup := st.encByKID[e.KID]; dup {
			return fmt.Errorf("encryption key %d: kid %q appears twice", i, e.KID)
		}
		key, err := base64.RawURLEncoding.Strict().DecodeString(e.Key)
		if err != nil || len(key) != encryptionKeyBytes {
			return fmt.Errorf("encryption key %d (kid %q): key is not %d bytes of base64url", i, e.KID, encryptionKeyBytes)
		}
		k := &encryptionKey{kid: e.KID, key: key, createdAt: e.CreatedAt}
		st.encByKID[k.kid] = k
		if e.Current {
			if st.encCurrent != nil {
				return fmt.Errorf("encryption keys %q and %q are both current", st.encCurrent.kid, k.kid)
			}
			st.encCurrent = k
		} else {
			others = append(others, k)
		}
	}
	if st.encCurrent == nil {
		return errors.New("no encryption key is marked current")
	}
	slices.SortStableFunc(others, func(a, b *encryptionKey) int { return b.createdAt.Compare(a.createdAt) })
	st.encKIDs = []string{st.encCurrent.kid}
	for _, k := range others {
		st.encKIDs = append(st.encKIDs, k.kid)
	}
	return nil
}

// validEncryptionKID reports whether kid may name an encryption key: it is written into every sealed
// secret between dots, so it is kept to the base64url alphabet.
func validEncryptionKID(kid string) bool {
	if kid == "" || len(kid) > 64 {
		return false
	}
	for _, c := range []byte(kid) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
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
