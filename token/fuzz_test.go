package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth"
	"github.com/golang-jwt/jwt/v5"
)

// fuzzES256Token was signed once by fuzzIssuers' ES256 issuer (fuzzKeySet, the clock at epoch) for
// testClaims. ECDSA signatures are randomized, so a token signed during the run never equals it:
// it is written down so that the committed corpus (testdata/fuzz/FuzzVerify) can hold valid ES256
// tokens and their mutations, which the fuzzer then mutates further.
const fuzzES256Token = "eyJhbGciOiJFUzI1NiIsImtpZCI6IkdKRFFUZ2N1ZnNzY09NOEdCR19jeGxmdjVjam9mS2hJcm15Nko3REUyalkiLCJ0eXAiOiJKV1QifQ" +
	".eyJpc3MiOiJodHRwczovL2F1dGguZmx1eHN0dWRpby50ZXN0Iiwic3ViIjoidXNlci0xIiwiYXVkIjpbImZsdXhzdHVkaW8iXSwiZXhwIjoxNzQxMDY1NjY3LCJpYXQiOjE3NDEwNjQ3NjcsImp0aSI6IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIiwic2lkIjoic2Vzc2lvbi0xIiwiZW1haWwiOiJ1c2VyQGV4YW1wbGUuY29tIiwidXNlclR5cGUiOiJjbGllbnQifQ" +
	".lEkpVvnMppYLQ3J9gE0sK9QISjpvALVrcQtADklchkGD04LgrAqMSsDMR3VtE3fwNbOCkFQX-rb5Qr7HWprFfg"

// fuzzKeySet is an in-memory key set holding one fixed P-256 key, so that tokens signed in one run
// (fuzzES256Token, the corpus) verify in every later one. The key is derived from a public string: it
// signs nothing but test tokens.
func fuzzKeySet(tb testing.TB) *KeySet {
	tb.Helper()
	d := sha256.Sum256([]byte("fluxauth token fuzz key"))
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := parseKeyFile(&keyFile{
		Version: keyFileVersion,
		Keys: []keyFileEntry{{KID: kid, Alg: AlgES256, Current: true, CreatedAt: epoch,
			PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))}},
		RefreshSecret:  base64.RawURLEncoding.EncodeToString(make([]byte, RefreshSecretBytes)),
		EncryptionKeys: testEncryptionKeys(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ks := &KeySet{clock: newClock()}
	ks.state.Store(st)
	return ks
}

// fuzzIssuers returns an ES256 and an HS256 issuer whose clocks stay at epoch, so the tokens they
// signed stay valid for the whole run, and the one token each has signed for testClaims. Every fuzz
// worker is a process of its own, so these must be the same in each: the ES256 token is
// fuzzES256Token (a fresh ECDSA signature differs every time), and HS256 signing is deterministic
// (HMAC, a jti read from zeros).
func fuzzIssuers(tb testing.TB) (es, hs *Issuer, esToken, hsToken string) {
	tb.Helper()
	zeros := bytes.NewReader(make([]byte, 16))
	es = mustIssuer(tb, Config{Keys: fuzzKeySet(tb), Clock: newClock()})
	hs = mustIssuer(tb, Config{HMACSecret: testSecret, Clock: newClock(), Rand: zeros})
	hsToken = mustSign(tb, hs, testClaims())
	mustVerify(tb, es, fuzzES256Token)
	return es, hs, fuzzES256Token, hsToken
}

// FuzzVerify feeds arbitrary strings, starting from valid tokens and their mutations, to Verify in both
// modes. Verify must never panic, must reject with the one safe invalid_token error, and must accept
// nothing but a token its issuer signed, byte for byte: a token that differs from a signed one in any
// byte (another encoding of the same bytes, a changed claim, a stray character) is a token nobody
// signed.
//
// One exception is known and left alone: an ECDSA signature (r, s) has a twin (r, n−s) that verifies
// the same header and payload. Random mutation cannot reach it, and the twin carries the very claims
// of the token it comes from; nothing keys on a token's bytes but the verified-token cache.
//
// The committed corpus (testdata/fuzz/FuzzVerify) holds the attacks worth keeping: line breaks and
// non-canonical trailing bits in the signature, a changed claim under the old MAC, alg none, HS256
// keyed with the ES256 public key, an unknown kid, padding.
func FuzzVerify(f *testing.F) {
	es, hs, esToken, hsToken := fuzzIssuers(f)
	for _, s := range []string{esToken, hsToken} {
		f.Add(s)
		parts := strings.Split(s, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + "." + parts[1])
		f.Add(s + ".")
		f.Add(" " + s)
	}
	f.Add("")
	f.Add("..")

	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range []struct {
			name   string
			iss    *Issuer
			signed string
		}{{"ES256", es, esToken}, {"HS256", hs, hsToken}} {
			claims, err := c.iss.Verify(s)
			if err != nil {
				var fe *fluxauth.Error
				if !errors.As(err, &fe) || fe.Code != fluxauth.EInvalidToken || fe.Message != invalidTokenMessage {
					t.Fatalf("%s: rejection %v is not the safe invalid_token error", c.name, err)
				}
				continue
			}
			if s != c.signed {
				t.Fatalf("%s: accepted %q, which the issuer never signed", c.name, s)
			}
			want := testClaims()
			if claims.UserID != want.UserID || claims.SessionID != want.SessionID || claims.Email != want.Email ||
				claims.UserType != want.UserType || !claims.IssuedAt.Equal(epoch) {
				t.Fatalf("%s: a signed token verified to other claims: %+v", c.name, claims)
			}
		}
	})
}

// TestVerifyRejectsNonCanonicalBase64url re-encodes each segment of a signed token with other values
// in the bits its last character carries beyond the data: the same bytes, another string, which
// nobody signed. The signature segment is the one that matters: header and payload are covered by
// the signature as text, the signature is not.
func TestVerifyRejectsNonCanonicalBase64url(t *testing.T) {
	es, hs, esToken, hsToken := fuzzIssuers(t)
	for _, c := range []struct {
		iss *Issuer
		tok string
	}{{es, esToken}, {hs, hsToken}} {
		parts := strings.Split(c.tok, ".")
		for seg, p := range parts {
			spare := map[int]int{2: 4, 3: 2}[len(p)%4] // bits of the last character beyond the data
			if spare == 0 {
				continue
			}
			last := strings.IndexByte(base64url, p[len(p)-1])
			for v := 1; v < 1<<spare; v++ {
				other := append([]string(nil), parts...)
				other[seg] = p[:len(p)-1] + string(base64url[last^v])
				tok := strings.Join(other, ".")
				if _, err := base64.RawURLEncoding.DecodeString(other[seg]); err != nil {
					t.Fatalf("test bug: %q is not base64url for the lenient decoder", other[seg])
				}
				_, err := c.iss.Verify(tok)
				wantInvalidToken(t, err, jwt.ErrTokenMalformed)
			}
		}
	}
}

const base64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// TestVerifyRejectsCharactersOutsideBase64url inserts, into each segment of a signed token, characters
// that a lenient decoder skips or treats as base64 (line breaks, padding, the standard alphabet).
func TestVerifyRejectsCharactersOutsideBase64url(t *testing.T) {
	es, hs, esToken, hsToken := fuzzIssuers(t)
	for _, c := range []struct {
		iss *Issuer
		tok string
	}{{es, esToken}, {hs, hsToken}} {
		parts := strings.Split(c.tok, ".")
		for seg, p := range parts {
			for _, ins := range []string{"\n", "\r", "\r\n", " ", "\t", "=", "+", "/", "\x00", "é"} {
				other := append([]string(nil), parts...)
				other[seg] = p[:len(p)-2] + ins + p[len(p)-2:]
				_, err := c.iss.Verify(strings.Join(other, "."))
				wantInvalidToken(t, err, jwt.ErrTokenMalformed)
			}
		}
	}
}
