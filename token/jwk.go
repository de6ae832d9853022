package token

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// jwkSet is the JSON Web Key Set (RFC 7517) that KeySet.JWKS serves: public keys only.
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// coordinates returns the fixed-length (32-byte) x and y of a P-256 key, base64url-encoded as RFC
// 7518 requires; big.Int.Bytes would drop leading zeros and break other verifiers one key in 128.
func coordinates(pub *ecdsa.PublicKey) (x, y string, err error) {
	b, err := pub.Bytes()
	if err != nil || len(b) != 65 {
		return "", "", fmt.Errorf("token: encode public key: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[1:33]), base64.RawURLEncoding.EncodeToString(b[33:]), nil
}

func publicJWK(kid string, pub *ecdsa.PublicKey) (jwk, error) {
	x, y, err := coordinates(pub)
	if err != nil {
		return jwk{}, err
	}
	return jwk{Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: kid, Alg: AlgES256, Use: "sig"}, nil
}

// thumbprint is the RFC 7638 JWK thumbprint, used as kid: it is derived from the public key, so it is
// unique per key and needs no bookkeeping.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	x, y, err := coordinates(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
