package token

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The legacy server's tokens: HS256 JWTs signed with its JWT_SECRET, naming the user in one claim,
// usually with iat and often without exp. fluxauth accepts them only at the exchange, once each, to
// open a session for the user they name, during the cutover. They are never access tokens.

// LegacyConfig configures a LegacyVerifier.
type LegacyConfig struct {
	// Secret is the legacy server's HS256 secret. Whatever its length: it is the legacy server's, not
	// fluxauth's, and fluxauth only verifies with it.
	Secret []byte
	// UserClaim names the claim that holds the user ID: a string, or an integer read as its decimal
	// text. Empty means "id".
	UserClaim string
	// MaxAge is how old, by iat, a token without exp may be.
	MaxAge time.Duration
}

// LegacyLeeway is the clock skew tolerated on a legacy token's exp and iat: the legacy server's clock
// is another machine's.
const LegacyLeeway = 30 * time.Second

// LegacyClaims is what an accepted legacy token says.
type LegacyClaims struct {
	UserID string
	// IssuedAt is the token's iat: when the user last signed in to the legacy server. Zero without iat.
	IssuedAt time.Time
	// Until is when the token stops being acceptable: its exp, else iat + MaxAge. A record that it was
	// exchanged must be kept until then.
	Until time.Time
	// Key names the token without holding it: the hex SHA-256 of the whole token.
	Key string
}

// LegacyVerifier checks the legacy server's tokens. It is safe for concurrent use.
type LegacyVerifier struct {
	// secret is a closure, as Issuer's, so that a dump of the value shows no key material.
	secret    func() []byte
	userClaim string
	maxAge    time.Duration
	parser    *jwt.Parser
}

// NewLegacyVerifier returns a verifier of tokens signed with c.Secret.
func NewLegacyVerifier(c LegacyConfig) (*LegacyVerifier, error) {
	if len(c.Secret) == 0 {
		return nil, errors.New("token: the legacy secret is empty")
	}
	if c.MaxAge <= 0 {
		return nil, errors.New("token: the legacy tokens' max age must be positive")
	}
	if c.UserClaim == "" {
		c.UserClaim = "id"
	}
	secret := append([]byte(nil), c.Secret...)
	return &LegacyVerifier{
		secret: func() []byte { return secret }, userClaim: c.UserClaim, maxAge: c.MaxAge,
		// The times are checked by Verify itself, against the service's clock, with its own reasons.
		parser: jwt.NewParser(jwt.WithValidMethods([]string{AlgHS256}), jwt.WithJSONNumber(), jwt.WithoutClaimsValidation()),
	}, nil
}

// MaxAge is how old, by iat, a token without exp may be.
func (v *LegacyVerifier) MaxAge() time.Duration { return v.maxAge }

// String keeps the secret out of logs and %v.
func (v *LegacyVerifier) String() string {
	return fmt.Sprintf("token.LegacyVerifier{userClaim: %q, maxAge: %v, secret: %s}", v.userClaim, v.maxAge, redacted)
}

// GoString keeps the secret out of %#v.
func (v *LegacyVerifier) GoString() string { return v.String() }

// LegacyError is why a legacy token was refused: Reason is a stable snake_case word for the log and
// the security event, never shown to the client.
type LegacyError struct {
	Reason string
	Err    error
}

func (e *LegacyError) Error() string { return "token: legacy token refused: " + e.Reason }

func (e *LegacyError) Unwrap() error { return e.Err }

// The reasons of LegacyError.
const (
	LegacyMalformed      = "malformed"        // not a compact JWT, or a claim of the wrong type
	LegacyAlgorithm      = "algorithm"        // another alg than HS256 (none, RS256, ES256, …)
	LegacyBadSignature   = "bad_signature"    // not signed with the legacy secret
	LegacyExpired        = "expired"          // exp has passed
	LegacyTooOld         = "too_old"          // no exp, and iat is older than the max age
	LegacyNoTimes        = "no_exp_or_iat"    // neither exp nor iat: nothing bounds its life
	LegacyIssuedInFuture = "issued_in_future" // iat (or nbf) after now
	LegacyNoUser         = "no_user"          // the user claim is missing, empty, or not a string or integer
)

func legacyRefused(reason string, err error) error { return &LegacyError{Reason: reason, Err: err} }

// Verify checks raw's algorithm (HS256 only: the header's alg is never trusted to choose), signature
// and times at now, and returns what it says; every refusal is a *LegacyError.
func (v *LegacyVerifier) Verify(raw string, now time.Time) (*LegacyClaims, error) {
	if len(raw) > maxTokenLen || !base64urlAndDots(raw) {
		return nil, legacyRefused(LegacyMalformed, jwt.ErrTokenMalformed)
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodHS256 {
			return nil, jwt.ErrTokenUnverifiable
		}
		return v.secret(), nil
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, legacyRefused(LegacyMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && !errors.Is(err, jwt.ErrSignatureInvalid):
		// The parser reports an alg outside WithValidMethods as an invalid signature, without the
		// HMAC comparison's ErrSignatureInvalid.
		return nil, legacyRefused(LegacyAlgorithm, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return nil, legacyRefused(LegacyAlgorithm, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, legacyRefused(LegacyBadSignature, err)
	default:
		return nil, legacyRefused(LegacyMalformed, err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil {
		return nil, legacyRefused(LegacyMalformed, err)
	}
	iat, err := claims.GetIssuedAt()
	if err != nil {
		return nil, legacyRefused(LegacyMalformed, err)
	}
	nbf, err := claims.GetNotBefore()
	if err != nil {
		return nil, legacyRefused(LegacyMalformed, err)
	}
	out := &LegacyClaims{Key: legacyKey(raw)}
	if iat != nil {
		out.IssuedAt = iat.Time.UTC()
		if out.IssuedAt.After(now.Add(LegacyLeeway)) {
			return nil, legacyRefused(LegacyIssuedInFuture, jwt.ErrTokenUsedBeforeIssued)
		}
	}
	if nbf != nil && nbf.Time.After(now.Add(LegacyLeeway)) {
		return nil, legacyRefused(LegacyIssuedInFuture, jwt.ErrTokenNotValidYet)
	}
	switch {
	case exp != nil:
		out.Until = exp.Time.UTC()
		if !now.Before(out.Until.Add(LegacyLeeway)) {
			return nil, legacyRefused(LegacyExpired, jwt.ErrTokenExpired)
		}
		out.Until = out.Until.Add(LegacyLeeway)
	case iat != nil:
		out.Until = out.IssuedAt.Add(v.maxAge)
		if !now.Before(out.Until) {
			return nil, legacyRefused(LegacyTooOld, jwt.ErrTokenExpired)
		}
	default:
		return nil, legacyRefused(LegacyNoTimes, jwt.ErrTokenRequiredClaimMissing)
	}
	if out.UserID, err = userIDClaim(claims[v.userClaim]); err != nil {
		return nil, legacyRefused(LegacyNoUser, err)
	}
	return out, nil
}

// userIDClaim reads a user claim: a non-empty string as it is, or an integer as its decimal text
// (the legacy server's numeric IDs, "id": 123). Fractions, exponents beyond an integer, booleans,
// objects and arrays are refused rather than guessed at.
func userIDClaim(c any) (string, error) {
	switch c := c.(type) {
	case string:
		if c == "" {
			return "", errors.New("the user claim is empty")
		}
		return c, nil
	case json.Number:
		if n, err := strconv.ParseInt(string(c), 10, 64); err == nil {
			return strconv.FormatInt(n, 10), nil
		}
		// 123.0 or 1.23e2 still name user 123; anything that is not a whole number names no one.
		f, err := strconv.ParseFloat(string(c), 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
			return "", fmt.Errorf("the user claim %q is not a whole number", string(c))
		}
		return strconv.FormatInt(int64(f), 10), nil
	case nil:
		return "", errors.New("the user claim is missing")
	}
	return "", fmt.Errorf("the user claim is a %T, not a string or an integer", c)
}

// legacyKey is the hex SHA-256 of a legacy token: how its exchange is remembered without keeping it.
func legacyKey(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// FromLegacy returns the first refresh token of the session a legacy token was exchanged for, and its
// hash. It is derived from the legacy token, as a successor is from the token it replaces, so a
// second exchange of the same token within the grace window gets the same session's token back on
// any instance, though only hashes are stored.
func (m *RefreshMinter) FromLegacy(legacyToken, sessionID string) (raw, hash string, err error) {
	mac := hmacSHA256(m.secret, "fluxauth legacy exchange\x00", legacyToken)
	return m.encode(sessionID, mac)
}
