// Package token owns fluxauth's token cryptography: signing and verifying access tokens (ES256 JWTs
// by default, HS256 with a shared secret for legacy services), the ES256 key set with its key file,
// rotation and JWKS, and minting and hashing opaque refresh tokens. It decides nothing about sessions
// or users; the account package does.
//
// Keys. ES256 keys live in a JSON key file (see keyFile for the format), 0600, replaced only whole
// (temporary file, then link or rename) so that every instance sharing the file, and every restart,
// signs and verifies with the same keys. RotateKeyFile adds a key and makes it current; retired keys
// keep verifying, and stay in the JWKS, until they are older than the longest token lifetime plus
// leeway, when the next rotation prunes them.
//
// Picking up a rotation without a restart takes two mechanisms, because a rotated file reaches
// instances at different moments. The service calls KeySet.Reload periodically (package app's
// signing-key reload, every 10 s), so every instance soon signs with the new key. Until an instance has reloaded, a token signed by one
// that already has would carry an unknown kid; rather than reject it, verification re-reads the file,
// at most once per UnknownKIDReloadInterval, so made-up kids cannot turn requests into disk reads.
// Verifiers outside fluxauth fetch the JWKS; rotation makes the new key current at once, so they must
// refetch on an unknown kid, as common JWKS clients do.
package token

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/golang-jwt/jwt/v5"
)

// Limits and defaults of Config.
const (
	DefaultTTL    = 15 * time.Minute
	DefaultLeeway = 30 * time.Second
	// MaxLeeway caps the clock skew tolerated on exp, nbf and iat: beyond it, leeway would quietly
	// extend every token's lifetime.
	MaxLeeway = 30 * time.Second
	// MinHMACSecretLen is the shortest accepted HS256 secret: 256 bits, the size of the HMAC output.
	MinHMACSecretLen = 32
)

// verifiedCacheEntries bounds the verified-token cache: about 1 KiB each, so at most ~64 MiB, and
// enough for every token live at once on an instance serving tens of thousands of users.
const verifiedCacheEntries = 65536

// maxTokenLen bounds the input Verify parses; fluxauth's tokens are a few hundred bytes, so anything
// far larger is garbage and need not cost JSON decoding.
const maxTokenLen = 8 << 10

// invalidTokenMessage is the one safe message for every rejection: telling a client which check
// failed helps only someone probing.
const invalidTokenMessage = "The access token is invalid or expired."

// Claims are the facts an access token carries.
type Claims struct {
	UserID    string // sub
	SessionID string // sid
	Email     string
	UserType  string
	ID        string // jti
	IssuedAt  time.Time
	ExpiresAt time.Time
	// AuthTime is auth_time (OpenID Connect Core §2): when the user last proved a credential. Zero:
	// no claim (a token minted before it was carried).
	AuthTime time.Time
	// AAL is the session's authentication assurance level, fluxauth.AAL1 or AAL2 (aal); "" for a
	// token minted before it was carried, read as aal1.
	AAL string
	// AMR lists how the user authenticated, as RFC 8176 method names (amr): "pwd", "otp", "fed", ….
	AMR []string
}

// Config configures an Issuer. Exactly one of Keys (ES256) and HMACSecret (legacy HS256) is set.
type Config struct {
	Issuer   string        // iss, e.g. the service's public URL
	Audience string        // aud
	TTL      time.Duration // access-token lifetime; 0 means DefaultTTL
	// Leeway is the clock skew tolerated when checking exp, nbf and iat; 0 means DefaultLeeway, and it
	// may not exceed MaxLeeway.
	Leeway     time.Duration
	Keys       *KeySet
	HMACSecret []byte
	Clock      fluxauth.Clock // nil means fluxauth.SystemClock
	Rand       io.Reader      // for jti; nil means crypto/rand
}

// String describes the config without the secret or keys.
func (c Config) String() string {
	return fmt.Sprintf("token.Config{Issuer: %q, Audience: %q, TTL: %v, Leeway: %v, Keys: %v, HMACSecret: %s}",
		c.Issuer, c.Audience, c.TTL, c.Leeway, c.Keys, secretDescription(c.HMACSecret))
}

// GoString keeps %#v from printing the secret.
func (c Config) GoString() string { return c.String() }

// MarshalJSON keeps a JSON dump of the config (a debug endpoint, a JSON log handler) from carrying
// the secret.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// LogValue keeps slog from printing the secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("issuer", c.Issuer), slog.String("audience", c.Audience),
		slog.Duration("ttl", c.TTL), slog.Duration("leeway", c.Leeway),
		slog.Any("keys", c.Keys), slog.String("hmacSecret", secretDescription(c.HMACSecret)),
	)
}

func (i *Issuer) secretDescription() string {
	if i.secret == nil {
		return "<unset>"
	}
	return redacted
}

func secretDescription(secret []byte) string {
	if secret == nil {
		return "<unset>"
	}
	return redacted
}

// Issuer signs and verifies access tokens. It is safe for concurrent use.
type Issuer struct {
	issuer   string
	audience string
	ttl      time.Duration
	leeway   time.Duration
	keys     *KeySet
	// secret returns the HS256 secret; nil in ES256 mode. A closure rather than a []byte so that even
	// a raw dump of an Issuer value, where fmt cannot reach String, shows a function address.
	secret  func() []byte
	clock   fluxauth.Clock
	rand    io.Reader
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
	cache   *verifiedCache
}

// NewIssuer validates c and returns an Issuer. Every problem with c is reported at once.
func NewIssuer(c Config) (*Issuer, error) {
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.Clock == nil {
		c.Clock = fluxauth.SystemClock{}
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer (iss) is empty"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience (aud) is empty"))
	}
	if c.TTL < 0 {
		errs = append(errs, fmt.Errorf("access-token TTL %v is negative", c.TTL))
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("leeway %v is outside 0s..%v", c.Leeway, MaxLeeway))
	}
	switch {
	case c.Keys == nil && c.HMACSecret == nil:
		errs = append(errs, errors.New("neither a key set (ES256) nor an HMAC secret (HS256) is configured"))
	case c.Keys != nil && c.HMACSecret != nil:
		errs = append(errs, errors.New("both a key set (ES256) and an HMAC secret (HS256) are configured; choose one"))
	case c.HMACSecret != nil && len(c.HMACSecret) < MinHMACSecretLen:
		// The length is safe to report; the secret is not.
		errs = append(errs, fmt.Errorf("HS256 secret (FLUXAUTH_JWT_SECRET) is %d bytes; it must be at least %d",
			len(c.HMACSecret), MinHMACSecretLen))
	case c.Keys != nil && c.Keys.state.Load() == nil:
		errs = append(errs, errors.New("key set is empty; build it with LoadOrCreateKeyFile or GenerateKeySet"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("token: invalid config: %w", err)
	}

	i := &Issuer{
		issuer: c.Issuer, audience: c.Audience, ttl: c.TTL, leeway: c.Leeway,
		keys: c.Keys, clock: c.Clock, rand: c.Rand, cache: newVerifiedCache(verifiedCacheEntries),
	}
	alg := AlgES256
	i.keyfunc = i.ecKey
	if c.HMACSecret != nil {
		alg = AlgHS256
		secret := append([]byte(nil), c.HMACSecret...) // the caller's slice may be reused or wiped
		i.secret = func() []byte { return secret }
		i.keyfunc = i.hmacKey
	}
	i.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{alg}),
		jwt.WithIssuer(c.Issuer),
		jwt.WithAudience(c.Audience),
		jwt.WithLeeway(c.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(c.Clock.Now),
	)
	return i, nil
}

// TTL returns the access-token lifetime (the AuthResponse's expiresIn).
func (i *Issuer) TTL() time.Duration { return i.ttl }

// KeyRetention is how long a retired key must keep verifying: the longest a token it signed can still
// be accepted. Pass it to RotateKeyFile.
func (i *Issuer) KeyRetention() time.Duration { return i.ttl + i.leeway }

// Alg returns the signing algorithm, ES256 or HS256.
func (i *Issuer) Alg() string {
	if i.secret != nil {
		return AlgHS256
	}
	return AlgES256
}

// jwtClaims is the wire form of Claims.
type jwtClaims struct {
	jwt.RegisteredClaims
	SessionID string           `json:"sid"`
	Email     string           `json:"email,omitempty"`
	UserType  string           `json:"userType,omitempty"`
	AuthTime  *jwt.NumericDate `json:"auth_time,omitempty"`
	AAL       string           `json:"aal,omitempty"`
	AMR       []string         `json:"amr,omitempty"`
}

// Validate is called by the parser after the registered claims pass: a token without a user or a
// session cannot be checked for revocation, so it is not one of ours.
func (c *jwtClaims) Validate() error {
	if c.Subject == "" || c.SessionID == "" {
		return errors.New("token lacks sub or sid")
	}
	return nil
}

// Sign issues an access token for c.UserID and c.SessionID carrying c.Email and c.UserType. Sign sets
// ID (a random jti), IssuedAt (now, whole seconds) and ExpiresAt (IssuedAt + TTL), replacing whatever
// c held, and returns the claims as the token carries them.
func (i *Issuer) Sign(c Claims) (string, Claims, error) {
	if c.UserID == "" || c.SessionID == "" {
		return "", Claims{}, errors.New("token: sign: user id and session id are required")
	}
	var id [16]byte
	if _, err := io.ReadFull(i.rand, id[:]); err != nil {
		return "", Claims{}, fmt.Errorf("token: sign: read randomness for jti: %w", err)
	}
	// JWT times are whole seconds; truncating here makes the returned claims equal what Verify reads.
	now := i.clock.Now().UTC().Truncate(time.Second)
	c.ID = hex.EncodeToString(id[:])
	c.IssuedAt = now
	c.ExpiresAt = now.Add(i.ttl)
	var authTime *jwt.NumericDate
	if !c.AuthTime.IsZero() {
		c.AuthTime = c.AuthTime.UTC().Truncate(time.Second)
		authTime = jwt.NewNumericDate(c.AuthTime)
	}
	jc := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			Subject:   c.UserID,
			Audience:  jwt.ClaimStrings{i.audience},
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ID:        c.ID,
		},
		SessionID: c.SessionID,
		Email:     c.Email,
		UserType:  c.UserType,
		AuthTime:  authTime,
		AAL:       c.AAL,
		AMR:       c.AMR,
	}
	var (
		s   string
		err error
	)
	if i.secret != nil {
		// No kid: legacy verifiers know the one secret, and a kid would only hint at our setup.
		s, err = jwt.NewWithClaims(jwt.SigningMethodHS256, &jc).SignedString(i.secret())
	} else {
		k := i.keys.current()
		t := jwt.NewWithClaims(jwt.SigningMethodES256, &jc)
		t.Header["kid"] = k.kid
		s, err = t.SignedString(k.priv)
	}
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: sign: %w", err)
	}
	return s, c, nil
}

// Verify checks an access token's algorithm, key, signature, issuer, audience and times and returns
// its claims. Every failure is a *fluxauth.Error with code EInvalidToken and one safe message; the
// reason (a jwt error, errors.Is-comparable with jwt.ErrTokenExpired and friends) is its Err.
func (i *Issuer) Verify(s string) (*Claims, error) {
	if len(s) > maxTokenLen {
		return nil, invalid(fmt.Errorf("%w: token is %d bytes, more than %d", jwt.ErrTokenMalformed, len(s), maxTokenLen))
	}
	if !base64urlAndDots(s) {
		return nil, invalid(fmt.Errorf("%w: token holds a character that is neither base64url nor a dot", jwt.ErrTokenMalformed))
	}
	now := i.clock.Now()
	if c, ok := i.cache.get(s, now); ok {
		return &c, nil
	}
	var jc jwtClaims
	if _, err := i.parser.ParseWithClaims(s, &jc, i.keyfunc); err != nil {
		return nil, invalid(err)
	}
	c := &Claims{
		UserID:    jc.Subject,
		SessionID: jc.SessionID,
		Email:     jc.Email,
		UserType:  jc.UserType,
		ID:        jc.ID,
		ExpiresAt: jc.ExpiresAt.Time.UTC(),
		AAL:       jc.AAL,
		AMR:       jc.AMR,
	}
	if jc.IssuedAt != nil {
		c.IssuedAt = jc.IssuedAt.Time.UTC()
	}
	if jc.AuthTime != nil {
		c.AuthTime = jc.AuthTime.Time.UTC()
	}
	i.cache.put(s, *c, c.ExpiresAt.Add(i.leeway), now)
	return c, nil
}

// base64urlAndDots reports whether s holds nothing but the characters a compact JWT is made of. The
// parser's base64 decoder skips CR and LF even in strict mode, so without this check a signed token
// with line breaks inserted into its signature verified too: a string the issuer never signed.
func base64urlAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func invalid(cause error) error {
	return fluxauth.Wrap(fluxauth.EInvalidToken, invalidTokenMessage, cause)
}

// ecKey picks the verification key by the token's kid. The parser has already refused any alg but
// ES256 (WithValidMethods), so a public key can never be fed to HMAC as a secret.
func (i *Issuer) ecKey(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodES256 {
		return nil, fmt.Errorf("alg %q is not %s", t.Method.Alg(), AlgES256)
	}
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("kid header is missing")
	}
	k, err := i.keys.verificationKey(kid)
	if err != nil {
		if len(kid) > 64 {
			kid = kid[:64] + "…"
		}
		return nil, fmt.Errorf("kid %q: %w", kid, err)
	}
	return k.pub, nil
}

func (i *Issuer) hmacKey(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodHS256 {
		return nil, fmt.Errorf("alg %q is not %s", t.Method.Alg(), AlgHS256)
	}
	return i.secret(), nil
}

// emptyJWKS is published in HS256 mode: the shared secret is never published.
var emptyJWKS = []byte(`{"keys":[]}`)

// JWKS returns the public keys for /.well-known/jwks.json; in HS256 mode the set is empty.
func (i *Issuer) JWKS() []byte {
	if i.keys == nil {
		return append([]byte(nil), emptyJWKS...)
	}
	return i.keys.JWKS()
}

// String describes the issuer without the secret or keys.
func (i *Issuer) String() string {
	if i == nil {
		return "token.Issuer(nil)"
	}
	return fmt.Sprintf("token.Issuer{iss: %q, aud: %q, alg: %s, ttl: %v, leeway: %v, keys: %v, hmacSecret: %s}",
		i.issuer, i.audience, i.Alg(), i.ttl, i.leeway, i.keys, i.secretDescription())
}

// GoString keeps %#v from printing the secret or keys.
func (i *Issuer) GoString() string { return i.String() }

// LogValue keeps slog from printing the secret or keys.
func (i *Issuer) LogValue() slog.Value {
	if i == nil {
		return slog.StringValue("token.Issuer(nil)")
	}
	return slog.GroupValue(
		slog.String("iss", i.issuer), slog.String("aud", i.audience), slog.String("alg", i.Alg()),
		slog.Duration("ttl", i.ttl), slog.Any("keys", i.keys),
		slog.String("hmacSecret", i.secretDescription()),
	)
}
