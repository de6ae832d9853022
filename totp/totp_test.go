package totp

import (
	"encoding/base32"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rfcSecret is RFC 6238 appendix B's SHA-1 seed, "12345678901234567890", in base32.
var rfcSecret = base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))

// TestRFC6238Vectors checks the appendix B vectors (their last 6 digits, SHA-1).
func TestRFC6238Vectors(t *testing.T) {
	for _, v := range []struct {
		unix int64
		code string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	} {
		got, err := Code(rfcSecret, Step(time.Unix(v.unix, 0)))
		if err != nil || got != v.code {
			t.Errorf("T=%d: %q, %v; want %q", v.unix, got, err, v.code)
		}
	}
}

func TestMatchAcceptsOneStepEitherSideAndNoFurther(t *testing.T) {
	now := time.Unix(1111111111, 0)
	cur := Step(now)
	for d := int64(-3); d <= 3; d++ {
		code, _ := Code(rfcSecret, cur+d)
		step, ok, err := Match(rfcSecret, code, now, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := d >= -1 && d <= 1
		if ok != want || (ok && step != cur+d) {
			t.Errorf("step %+d: ok %v step %d; want ok %v", d, ok, step-cur, want)
		}
	}
}

func TestMatchRefusesTheLastAcceptedStepAndEarlierOnes(t *testing.T) {
	now := time.Unix(1111111111, 0)
	cur := Step(now)
	code, _ := Code(rfcSecret, cur)
	if _, ok, _ := Match(rfcSecret, code, now, cur); ok {
		t.Fatal("the step already accepted matched again")
	}
	if _, ok, _ := Match(rfcSecret, code, now, cur+1); ok {
		t.Fatal("a step before the last accepted one matched")
	}
	if step, ok, _ := Match(rfcSecret, code, now, cur-1); !ok || step != cur {
		t.Fatalf("the code of a later step was refused: %v %d", ok, step)
	}
}

func TestMatchRefusesMalformedCodes(t *testing.T) {
	now := time.Unix(1111111111, 0)
	code, _ := Code(rfcSecret, Step(now))
	for _, c := range []string{"", code[:5], code + "0", " " + code[1:], "12345a", "１２３４５６"} {
		if _, ok, err := Match(rfcSecret, c, now, 0); ok || err != nil {
			t.Errorf("%q: ok %v err %v", c, ok, err)
		}
	}
}

func TestNewKeyIsRandomAndDescribesItself(t *testing.T) {
	a, err := NewKey("FluxStudio", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKey("FluxStudio", "ada@example.com")
	if a.Secret == b.Secret {
		t.Fatal("two keys share a secret")
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(a.Secret)
	if err != nil || len(raw) != secretSize {
		t.Fatalf("secret: %d bytes, %v", len(raw), err)
	}
	u, err := url.Parse(a.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("uri %q", a.URI)
	}
	q := u.Query()
	if q.Get("secret") != a.Secret || q.Get("issuer") != "FluxStudio" || q.Get("digits") != "6" ||
		q.Get("period") != "30" || q.Get("algorithm") != "SHA1" || !strings.Contains(u.Path, "ada@example.com") {
		t.Fatalf("uri %q", a.URI)
	}
	png, ok := strings.CutPrefix(a.QR, "data:image/png;base64,")
	if !ok {
		t.Fatalf("qr %.40q", a.QR)
	}
	data, err := base64.StdEncoding.DecodeString(png)
	if err != nil || !strings.HasPrefix(string(data), "\x89PNG") {
		t.Fatalf("qr is not a PNG: %v", err)
	}
	if code, err := Code(a.Secret, 1); err != nil || len(code) != Digits {
		t.Fatalf("code %q %v", code, err)
	}
}
