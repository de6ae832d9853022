package account

import (
	"strings"

	"github.com/fluxstudio/fluxauth"
)

// Device describes where a request came from; sessions and security events record it.
type Device struct {
	Name        string // what the client called itself, else derived from the User-Agent
	Fingerprint string
	IP          string
	UserAgent   string
}

// maxDeviceField bounds client-supplied device strings to what the columns hold; maxUserAgent bounds
// the user agent, whose column is unbounded text.
const (
	maxDeviceField = 255
	maxUserAgent   = 1024
)

// normalized makes what the client said about its device fit to store, whichever way it came (the
// User-Agent and X-Device-Fingerprint headers carry any bytes).
func (d Device) normalized() Device {
	d.UserAgent = cleanText(d.UserAgent, maxUserAgent)
	d.Name = cleanText(d.Name, maxDeviceField)
	if d.Name == "" {
		d.Name = DeviceNameFromUserAgent(d.UserAgent)
	}
	d.Fingerprint = cleanText(d.Fingerprint, maxDeviceField)
	return d
}

// cleanText returns client text as it may be stored: valid UTF-8, each invalid sequence replaced by
// U+FFFD (PostgreSQL refuses invalid UTF-8, and one such event used to stall the audit log); control
// characters and bidi or invisible format characters (fluxauth.UnsafeRune) turned into spaces
// (PostgreSQL refuses NUL, and the others garble logs, or make text read backwards in the dashboard
// and in mails); trimmed; and at most n bytes, cut on a character boundary.
func cleanText(s string, n int) string {
	// Bound the work first; a character cut in two here becomes U+FFFD below, still valid.
	if len(s) > 4*n {
		s = s[:4*n]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if fluxauth.UnsafeRune(r) {
			return ' '
		}
		return r
	}, s)
	return clip(strings.TrimSpace(s), n)
}

// clip cuts valid UTF-8 to at most n bytes, on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the column never holds invalid UTF-8.
	for n > 0 && !startsRune(s[n]) {
		n--
	}
	return s[:n]
}

func startsRune(b byte) bool { return b&0xC0 != 0x80 }

// DeviceNameFromUserAgent names a device the way a user recognises it, like "Chrome on macOS".
func DeviceNameFromUserAgent(ua string) string {
	if strings.TrimSpace(ua) == "" {
		return "Unknown device"
	}
	browser := firstMatch(ua, browsers)
	os := firstMatch(ua, systems)
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return os + " device"
	}
	name := ua
	if i := strings.IndexAny(ua, "/ ("); i > 0 {
		name = ua[:i]
	}
	// The User-Agent holds whatever bytes the client sent, and callers other than normalized may not
	// have cleaned it; the name is stored and shown, so it must still be text, short and not blank.
	if name = cleanText(name, maxUANameLen); name == "" {
		return "Unknown device"
	}
	return name
}

// maxUANameLen bounds a device name taken from the User-Agent's own text.
const maxUANameLen = 64

type uaRule struct{ token, name string }

// Order matters: Edge and Opera also claim Chrome, Chrome also claims Safari, and iOS also claims
// "Mac OS X".
var browsers = []uaRule{
	{"FluxStudio", "FluxStudio app"},
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
	{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
	{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"}, {"Chrome/", "Chrome"}, {"Chromium/", "Chromium"},
	{"Safari/", "Safari"},
	{"okhttp/", "Android app"}, {"CFNetwork/", "iOS app"},
	{"curl/", "curl"},
}

var systems = []uaRule{
	{"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Android", "Android"}, {"CrOS", "ChromeOS"},
	{"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
}

func firstMatch(ua string, rules []uaRule) string {
	for _, r := range rules {
		if strings.Contains(ua, r.token) {
			return r.name
		}
	}
	return ""
}
