package account

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fluxstudio/fluxauth"
)

func TestDeviceNameFromUserAgent(t *testing.T) {
	cases := map[string]string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36":                          "Chrome on macOS",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0":                   "Edge on Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1": "Safari on iOS",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36":                       "Chrome on Android",
		"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0":                                                                  "Firefox on Linux",
		"FluxStudio/3.2 (iPhone; iOS 17.0)": "FluxStudio app on iOS",
		"curl/8.4.0":                        "curl",
		"":                                  "Unknown device",
		"SomeBot/1.0":                       "SomeBot",
	}
	for ua, want := range cases {
		if got := DeviceNameFromUserAgent(ua); got != want {
			t.Errorf("%q: got %q, want %q", ua, got, want)
		}
	}
}

func TestClientSuppliedDeviceFieldsAreBounded(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a'
	}
	d := Device{Name: "é" + string(long), Fingerprint: string(long)}.normalized()
	if len(d.Name) > maxDeviceField || len(d.Fingerprint) > maxDeviceField {
		t.Fatalf("not clipped: %d %d", len(d.Name), len(d.Fingerprint))
	}
	if d := (Device{Name: "  ", UserAgent: "curl/8"}).normalized(); d.Name != "curl" {
		t.Fatalf("blank name not derived: %q", d.Name)
	}
}

// Header text carries any bytes; PostgreSQL refuses invalid UTF-8 and NUL, and one such event used
// to stall the whole audit log.
func TestHeaderTextIsMadeValidAndBoundedBeforeItIsStored(t *testing.T) {
	hostile := []string{
		"Mozilla/5.0 \xff\xfe (X11)",
		"curl/8\x00injected",
		"tab\tand\r\nnewline",
		"Mozilla/5.0 \u202egnp.exe\u202c \u2066isolate\u2069 \u200bzero\u200ewidth\ufeff",
		strings.Repeat("\xff", 10000),
		strings.Repeat("é", 2000) + "\xc3", // a character cut in two at the end
		strings.Repeat("a", 1<<20),
	}
	for _, s := range hostile {
		d := Device{Name: s, Fingerprint: s, UserAgent: s}.normalized()
		derived := Device{UserAgent: s}.normalized()
		for field, v := range map[string]string{"name": d.Name, "fingerprint": d.Fingerprint, "user agent": d.UserAgent, "derived name": derived.Name} {
			if !utf8.ValidString(v) {
				t.Errorf("%.20q: %s is not valid UTF-8: %.40q", s, field, v)
			}
			if strings.IndexFunc(v, fluxauth.UnsafeRune) >= 0 {
				t.Errorf("%.20q: %s keeps a control, bidi or invisible format character: %.40q", s, field, v)
			}
		}
		if len(d.Name) > maxDeviceField || len(d.Fingerprint) > maxDeviceField || len(d.UserAgent) > maxUserAgent {
			t.Errorf("%.20q: not bounded: name %d, fingerprint %d, user agent %d bytes", s, len(d.Name), len(d.Fingerprint), len(d.UserAgent))
		}
	}
	if d := (Device{UserAgent: "Mozilla/5.0 \xff (Macintosh) Chrome/120.0"}).normalized(); d.Name != "Chrome on macOS" || d.UserAgent != "Mozilla/5.0 \uFFFD (Macintosh) Chrome/120.0" {
		t.Fatalf("the readable rest was lost: %q, %q", d.Name, d.UserAgent)
	}
}
