package token

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
)

// nodeVerifier runs testdata/verify.mjs: node's own crypto checking our tokens against our JWKS.
type nodeVerifier struct {
	node string
	dir  string
}

func newNodeVerifier(tb testing.TB) *nodeVerifier {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if testenv.Required() {
			tb.Fatalf("node is not on PATH but FLUXAUTH_TEST_REQUIRE_SERVICES=1: the JWKS interop test must run")
		}
		tb.Skip("JWKS interop test skipped: node is not on PATH (install Node.js 20+ to run it)")
	}
	return &nodeVerifier{node: node, dir: tb.TempDir()}
}

// verify returns node's exit code and output for tok checked against jwks at now.
func (n *nodeVerifier) verify(tb testing.TB, jwks []byte, tok, audience string, now time.Time) (int, string) {
	tb.Helper()
	path := filepath.Join(n.dir, "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(n.node, filepath.Join("testdata", "verify.mjs"), path, tok, testIssuer, audience,
		strconv.FormatInt(now.Unix(), 10))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		if exit.ExitCode() != 1 {
			tb.Fatalf("verify.mjs failed (exit %d), not a verdict:\n%s", exit.ExitCode(), out.String())
		}
		return 1, out.String()
	default:
		tb.Fatalf("run node: %v", err)
		return 0, ""
	}
}

func TestNodeVerifiesTokensWithThePublishedJWKS(t *testing.T) {
	node := newNodeVerifier(t)
	clock := newClock()
	path := keyFilePath(t)
	ks := mustLoadOrCreate(t, path, clock)
	iss := mustIssuer(t, Config{Keys: ks, Clock: clock})
	oldTok := mustSign(t, iss, testClaims())
	clock.Advance(time.Minute)
	mustRotate(t, path, clock, iss.KeyRetention())
	if _, err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	tok, claims, err := iss.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	jwks := iss.JWKS()
	now := clock.Now()

	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + segment(t, with(validPayload(now), "sub", "someone-else")) + "." + parts[2]
	otherKeys := mustIssuer(t, Config{Keys: mustKeySet(t, clock), Clock: clock})
	legacy := mustIssuer(t, Config{HMACSecret: testSecret, Clock: clock})

	cases := []struct {
		name      string
		tok       string
		audience  string
		now       time.Time
		wantExit  int
		wantInOut string
	}{
		{"token from the current key", tok, testAudience, now, 0, "valid: sub=user-1 sid=session-1"},
		{"token from the retired key", oldTok, testAudience, now, 0, "valid:"},
		{"tampered payload", tampered, testAudience, now, 1, "signature does not verify"},
		{"expired", tok, testAudience, claims.ExpiresAt, 1, "expired"},
		{"other audience", tok, "another-service", now, 1, "aud"},
		{"kid not in the JWKS", mustSign(t, otherKeys, testClaims()), testAudience, now, 1, "not in the JWKS"},
		{"HS256 legacy token", mustSign(t, legacy, testClaims()), testAudience, now, 1, "alg HS256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := node.verify(t, jwks, c.tok, c.audience, c.now)
			if code != c.wantExit || !strings.Contains(out, c.wantInOut) {
				t.Fatalf("node exit %d, output %q; want exit %d with %q", code, out, c.wantExit, c.wantInOut)
			}
		})
	}
}

// One P-256 key in 256 has an x (or a y) starting with a zero byte; a JWKS that trimmed it (as
// big.Int.Bytes does) would break other verifiers, and change the kid, for exactly those keys.
func TestNodeAcceptsKeysWhoseCoordinatesStartWithZero(t *testing.T) {
	node := newNodeVerifier(t)
	clock := newClock()
	for name, offset := range map[string]int{"x": 1, "y": 33} {
		t.Run(name, func(t *testing.T) {
			ks := keySetWithLeadingZero(t, clock, offset)
			iss := mustIssuer(t, Config{Keys: ks, Clock: clock})
			var set struct{ Keys []map[string]string }
			if err := json.Unmarshal(iss.JWKS(), &set); err != nil {
				t.Fatal(err)
			}
			if c, _ := base64.RawURLEncoding.DecodeString(set.Keys[0][name]); len(c) != 32 {
				t.Fatalf("JWK %s is %d bytes; want 32", name, len(c))
			}
			if code, out := node.verify(t, iss.JWKS(), mustSign(t, iss, testClaims()), testAudience, clock.Now()); code != 0 {
				t.Fatalf("node rejects a token from a key with a short %s: %s", name, out)
			}
		})
	}
}

// keySetWithLeadingZero generates keys until one has a zero byte at offset of its uncompressed point.
func keySetWithLeadingZero(tb testing.TB, clock *stepClock, offset int) *KeySet {
	tb.Helper()
	for range 5000 {
		ks := mustKeySet(tb, clock)
		raw, err := currentPrivateKey(ks).PublicKey.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		if raw[offset] == 0 {
			return ks
		}
	}
	tb.Fatal("no key with a leading zero coordinate in 5000 tries")
	return nil
}
