package account

import "strings"

// Device describes where a request came from; sessions and security events record it.
type Device struct {
	Name        string // what the client called itself, else derived from the User-Agent
	Fingerprint string
	IP          string
	UserAgent   string
}

// maxDeviceField bounds client-supplied device strings to what the columns hold.
const maxDeviceField = 255

func (d Device) normalized() Device {
	d.Name = clip(strings.TrimSpace(d.Name), maxDeviceField)
	if d.Name == "" {
		d.Name = DeviceNameFromUserAgent(d.UserAgent)
	}
	d.Fingerprint = clip(strings.TrimSpace(d.Fingerprint), maxDeviceField)
	d.UserAgent = clip(d.UserAgent, 1024)
	return d
}

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
	if i := strings.IndexAny(ua, "/ ("); i > 0 {
		return clip(ua[:i], 64)
	}
	return clip(ua, 64)
}

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
