package account

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// maxDeviceNameFromUA bounds the names DeviceNameFromUserAgent makes: its fixed names are shorter, and
// a name taken from the User-Agent itself is cut to 64 bytes.
const maxDeviceNameFromUA = 64

// FuzzDeviceNameFromUserAgent: whatever bytes a client sends as its User-Agent, the device name made
// from it is text (valid UTF-8, no control characters), short, and never empty or blank, since it is
// stored and shown to the user in their list of sessions.
func FuzzDeviceNameFromUserAgent(f *testing.F) {
	for _, ua := range []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
		"FluxStudio/3.2 (iPhone; iOS 17.0)",
		"curl/8.4.0",
		"SomeBot/1.0",
		"",
		"\xff/1.0",
	} {
		f.Add(ua)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		name := DeviceNameFromUserAgent(ua)
		if !utf8.ValidString(name) {
			t.Fatalf("name %q for %q is not valid UTF-8", name, ua)
		}
		if len(name) > maxDeviceNameFromUA {
			t.Fatalf("name for %q is %d bytes, more than %d", ua, len(name), maxDeviceNameFromUA)
		}
		if strings.TrimSpace(name) == "" {
			t.Fatalf("name %q for %q is blank", name, ua)
		}
		if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
			t.Fatalf("name %q for %q holds a control character", name, ua)
		}
	})
}

func TestDeviceNameFromHostileUserAgent(t *testing.T) {
	for ua, want := range map[string]string{
		"\xff\xfeBot/1.0":             "\uFFFDBot",
		"\u00a0/1.0":                  "Unknown device",
		strings.Repeat("\x80", 70):    "\uFFFD",
		strings.Repeat("é", 40) + "/": strings.Repeat("é", 32),
	} {
		if got := DeviceNameFromUserAgent(ua); got != want {
			t.Errorf("%q: got %q, want %q", ua, got, want)
		}
	}
}

// FuzzDeviceNormalized: whatever a client says about its device (body fields, the User-Agent and
// X-Device-Fingerprint headers), what is stored is text without control characters (PostgreSQL
// refuses invalid UTF-8 and NUL), fits its column, and names the device; a plain name the client chose
// is kept.
func FuzzDeviceNormalized(f *testing.F) {
	f.Add("Kate's MacBook", "fp-1234", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36")
	f.Add("", "", "curl/8.4.0")
	f.Add("  ", "\xff", "\xff\xfe/1.0")
	f.Add("\x00", "a\x00b", "Bot\x00/1")
	f.Fuzz(func(t *testing.T, name, fingerprint, ua string) {
		in := Device{Name: name, Fingerprint: fingerprint, IP: "203.0.113.5", UserAgent: ua}
		d := in.normalized()
		for _, field := range []struct {
			what, value string
			max         int
		}{{"name", d.Name, maxDeviceField}, {"fingerprint", d.Fingerprint, maxDeviceField}, {"user agent", d.UserAgent, maxUserAgent}} {
			if !utf8.ValidString(field.value) || strings.IndexFunc(field.value, unicode.IsControl) >= 0 || len(field.value) > field.max {
				t.Fatalf("%s %q: not text without control characters of at most %d bytes (from %+v)", field.what, field.value, field.max, in)
			}
		}
		if strings.TrimSpace(d.Name) == "" {
			t.Fatalf("blank device name from %+v", in)
		}
		if d.IP != in.IP {
			t.Fatalf("IP changed from %q to %q", in.IP, d.IP)
		}
		if plain := strings.TrimSpace(name); plain != "" && len(plain) <= maxDeviceField && isPlainASCII(plain) && d.Name != plain {
			t.Fatalf("the client's name %q became %q", plain, d.Name)
		}
	})
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
