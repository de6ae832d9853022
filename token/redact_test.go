package token

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
)

// secretForms are the spellings under which a private scalar or secret could leak into output.
func secretForms(tb testing.TB, ks *KeySet, secret []byte) []string {
	tb.Helper()
	var forms []string
	for _, k := range ks.state.Load().byKID {
		d, err := k.priv.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		forms = append(forms,
			base64.RawURLEncoding.EncodeToString(d),
			base64.StdEncoding.EncodeToString(d),
			hex.EncodeToString(d),
			new(big.Int).SetBytes(d).String(),
			fmt.Sprint(d),
			"PRIVATE KEY",
		)
	}
	if secret != nil {
		forms = append(forms, string(secret), hex.EncodeToString(secret), fmt.Sprint(secret))
	}
	return forms
}

func TestPrivateKeysAndSecretsNeverAppearInOutput(t *testing.T) {
	clock := newClock()
	path := keyFilePath(t)
	mustLoadOrCreate(t, path, clock)
	ks := mustRotate(t, path, clock, DefaultTTL) // two keys, one retired
	esCfg := Config{Issuer: testIssuer, Audience: testAudience, Keys: ks, Clock: clock}
	hsCfg := Config{Issuer: testIssuer, Audience: testAudience, HMACSecret: testSecret, Clock: clock}
	esIssuer := mustIssuer(t, esCfg)
	hsIssuer := mustIssuer(t, hsCfg)
	forms := secretForms(t, ks, testSecret)
	entry := readKeyFileForTest(t, path).Keys[0]
	forms = append(forms, strings.Split(entry.PrivateKey, "\n")[1])
	forms = append(forms, encryptionKeyForms(ks)...)
	encEntry := readKeyFileForTest(t, path).EncryptionKeys[0]

	values := map[string]any{
		"KeySet":               ks,
		"Issuer (ES256)":       esIssuer,
		"Issuer (HS256)":       hsIssuer,
		"Issuer value":         *hsIssuer, // fmt cannot reach String here; the secret sits in a closure
		"Config (ES256)":       esCfg,
		"Config (HS256)":       hsCfg,
		"*Config":              &hsCfg,
		"key file entry":       entry,
		"encryption key entry": encEntry,
		"encryption key":       ks.state.Load().encCurrent,
		"Sealer":               ks.Sealer(),
		"signing key":          ks.current(),
		"struct holding all": struct {
			K *KeySet
			I *Issuer
			C Config
		}{ks, hsIssuer, hsCfg},
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				fmt.Fprintf(&buf, verb+"\n", v)
			}
			fmt.Fprintln(&buf, v)
			if b, err := json.Marshal(v); err == nil && !strings.HasPrefix(name, "key file entry") && !strings.HasPrefix(name, "encryption key ") {
				buf.Write(b) // the entries are the file format: marshalling them is how keys are saved
			}
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("value", "v", v)
			slog.New(slog.NewTextHandler(&buf, nil)).Info("value", "v", v)
			out := buf.String()
			for _, f := range forms {
				if strings.Contains(out, f) {
					t.Fatalf("output contains key material %q:\n%s", f, out)
				}
			}
			if name != "Issuer value" && !strings.Contains(out, "[redacted]") {
				t.Fatalf("output does not say the keys are redacted:\n%s", out)
			}
		})
	}

	t.Run("JWKS", func(t *testing.T) {
		out := string(esIssuer.JWKS())
		for _, f := range forms {
			if strings.Contains(out, f) {
				t.Fatalf("JWKS contains key material %q", f)
			}
		}
		if strings.Contains(out, `"d"`) {
			t.Fatal("JWKS has a d member")
		}
	})
}
