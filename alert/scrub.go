package alert

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/getsentry/sentry-go"
)

// Filtered replaces every secret the Scrubber finds.
const Filtered = "[Filtered]"

// Scrubber removes secrets from everything fluxauth sends out of the process (Sentry events, webhook
// alerts): passwords, refresh, access, ID and device tokens, nonces, Authorization and Cookie
// headers, signing keys, credentials in URLs, and the configured secrets it is given by value. It
// works on two levels. A value stored under a name that says it is secret ("password",
// "refreshToken", "Authorization", "smtp_pass"…) is replaced whole, whatever it looks like. Free text
// (messages, error strings, header and query values) is searched for what secrets look like: JWTs,
// "Bearer …", name=value and "name": "value" pairs with such names (an unquoted value may hold
// spaces: pairValue says where it ends), "pw: value" with a password's abbreviation, URL passwords
// (up to the last "@" before the host), PEM private keys, long random-looking strings of the base64url alphabet (refresh and device tokens), and the
// configured values themselves.
//
// It errs on the side of removing: a long identifier that looks random is filtered too. Maps are
// copied, never changed in place, since they may be shared with other readers (an event's metadata).
type Scrubber struct {
	secrets []string
}

// minSecretLen is the shortest configured secret replaced by value; shorter ones would mangle
// ordinary text, and no secret fluxauth accepts is that short.
const minSecretLen = 6

// NewScrubber returns a scrubber that also replaces each of secrets wherever it appears; empty and
// very short values are ignored.
func NewScrubber(secrets ...string) *Scrubber {
	s := &Scrubber{}
	for _, v := range secrets {
		if len(v) >= minSecretLen && !slices.Contains(s.secrets, v) {
			s.secrets = append(s.secrets, v)
		}
	}
	// Longest first, so a secret containing another is replaced whole.
	slices.SortFunc(s.secrets, func(a, b string) int { return len(b) - len(a) })
	return s
}

// secretWords are the parts of a name that mark its value secret; names are compared lower-cased
// without "-", "_", "." or spaces.
var secretWords = []string{
	"password", "passwd", "passphrase", "pwd", "secret", "token", "authorization", "cookie", "nonce",
	"apikey", "privatekey", "signingkey", "credential", "smtpauth", "sentrydsn", "webhookurl",
}

// exactSecretNames are names that are secret only on their own ("auth", but not "oauth_provider");
// a name ending in "pass" (smtp_pass) or "_pw" (db_pw) is secret too.
var exactSecretNames = []string{"auth", "pass", "pw", "jwk", "jwks", "keys", "dsn"}

// SensitiveName reports whether a value stored under name must never be sent. Names of identifiers,
// types and counts of secrets ("token_id", "tokenType", "token_count") are not sensitive.
func SensitiveName(name string) bool {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, name)
	if slices.Contains(exactSecretNames, n) || strings.HasSuffix(n, "pass") || strings.HasSuffix(strings.ToLower(name), "_pw") {
		return true
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			for _, harmless := range []string{"id", "ids", "type", "count", "expiresin", "ttl"} {
				if strings.HasSuffix(n, harmless) && !strings.HasSuffix(n, w) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// secretName is SensitiveName's vocabulary as a regular expression, for names inside free text.
const secretName = `[A-Za-z0-9_.\-]*(?i:password|passwd|passphrase|pwd|secret|token|authorization|cookie|nonce|api[_\-]?key|private[_\-]?key|signing[_\-]?key|credential|dsn)[A-Za-z0-9_.\-]*`

// pwName is a password's abbreviation as a whole name, alone or ending a longer one: pw, pwd,
// pass, passwd, smtp_pass, db-pw.
const pwName = `(?i:(?:[A-Za-z0-9]+[_.\-])*(?:pw|pwd|pass|passwd))`

// pairName finds the start of a name=value pair whose name is secret; pairValue finds where its
// value ends.
var pairName = regexp.MustCompile(`\b(` + secretName + `|` + pwName + `)(\s*=[ \t]*)`)

// nextKey is a word that starts another pair: user=ann, host:, "status": (the end of a value).
var nextKey = regexp.MustCompile(`^[A-Za-z0-9_.\-]+(=|:(\s|$))`)

// valueStops end an unquoted value wherever they appear in it.
const valueStops = "\r\n&,;\"')]}"

// pairValue returns where the value starting at v[i:] ends. A quoted value ends at its closing
// quote. An unquoted one may hold spaces ("password=correct horse battery staple"): it ends at the
// end of the line, at any of valueStops, or before a following word that starts another pair
// ("user=ann", "host: x"), so "password=a b user=ann" keeps "user=ann". An unclosed quote is the
// start of an unquoted value.
func pairValue(v string, i int) int {
	if i < len(v) && (v[i] == '"' || v[i] == '\'') {
		if k := strings.IndexByte(v[i+1:], v[i]); k >= 0 {
			return i + k + 2
		}
		i++
	}
	end := i
	for {
		j := end
		for j < len(v) && !isBlank(v[j]) && !strings.ContainsRune(valueStops, rune(v[j])) {
			j++
		}
		if j == end {
			return end
		}
		end = j
		k := j
		for k < len(v) && isBlank(v[k]) {
			k++
		}
		if k == j || k == len(v) || strings.ContainsRune(valueStops, rune(v[k])) || nextKey.MatchString(v[k:]) {
			return end
		}
		end = k
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// pairValues replaces the value of every name=value pair whose name is secret.
func pairValues(v string) string {
	var b strings.Builder
	last := 0
	for _, m := range pairName.FindAllStringSubmatchIndex(v, -1) {
		if m[0] < last {
			continue
		}
		end := pairValue(v, m[1])
		if end == m[1] || end == m[1]+1 && (v[m[1]] == '"' || v[m[1]] == '\'') {
			continue
		}
		b.WriteString(v[last:m[1]])
		b.WriteString(Filtered)
		last = end
	}
	if last == 0 {
		return v
	}
	b.WriteString(v[last:])
	return b.String()
}

// textRules are applied to free text in order.
var textRules = []struct {
	re   *regexp.Regexp
	repl string
}{
	// PEM private keys, whole.
	{regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`), Filtered},
	// The password of a URL (postgres://user:pass@host, smtp://…).
	// The password ends at the last "@" before the path, query or fragment: a password may hold "@"
	// (smtp://mailer:p@ss@host).
	{regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://[^/?#\s:@]*):[^/?#\s]*@`), "${1}:" + Filtered + "@"},
	// Header lines written out: everything after the name.
	{regexp.MustCompile(`(?i)\b((?:proxy-)?authorization|set-cookie|cookie)(\s*:\s*)[^\r\n]*`), "${1}${2}" + Filtered},
	// Credentials of an Authorization scheme. "Basic" only capitalised, as in the header: the
	// English word is common in error messages.
	{regexp.MustCompile(`(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*`), "${1}${2}" + Filtered},
	{regexp.MustCompile(`\b(Basic)(\s+)[A-Za-z0-9+/]{8,}={0,2}`), "${1}${2}" + Filtered},
	// JSON members: "password": "…", "refreshToken": "…".
	{regexp.MustCompile(`("` + secretName + `"\s*:\s*)("(?:[^"\\]|\\.)*"|[^\s,}\]]+)`), `${1}"` + Filtered + `"`},
	// name=value pairs: query strings, form bodies, log lines, connection strings.
	{nil, ""}, // no regular expression: pairValues, since a value's end is not regular

	// "name: value" with a password's abbreviation: pw: hunter2. The colon
	// form is kept to the abbreviations because the words themselves begin Go error messages
	// ("password: malformed hash", "token: …"); its value is one word.
	{regexp.MustCompile(`\b(` + pwName + `)(\s*:[ \t]*)("[^"]*"|'[^']*'|[^\s&,;"')\]}]+)`), "${1}${2}" + Filtered},
	// JWTs (access tokens, Google and Apple ID tokens), signed or not.
	{regexp.MustCompile(`eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*`), Filtered},
}

// opaque finds long runs of the base64url alphabet: refresh tokens (87 characters), legacy refresh
// tokens and device tokens (43), a signing key's private scalar.
var opaque = regexp.MustCompile(`[A-Za-z0-9_\-]{32,}`)

// randomLooking reports whether a base64url run is more likely a secret than a name: it mixes upper
// and lower case letters with digits or "_"/"-". Hex digests, UUIDs, request IDs and lower-case
// identifiers do not (those are ours to keep: they are how a report is traced back).
func randomLooking(s string) bool {
	var upper, lower, other bool
	for _, r := range s {
		switch {
		case 'A' <= r && r <= 'Z':
			upper = true
		case 'a' <= r && r <= 'z':
			lower = true
		default:
			other = true
		}
	}
	return upper && lower && other
}

// Text returns v with every secret it can recognise replaced by Filtered.
func (s *Scrubber) Text(v string) string {
	if v == "" {
		return v
	}
	for _, secret := range s.secrets {
		v = strings.ReplaceAll(v, secret, Filtered)
	}
	for _, r := range textRules {
		if r.re == nil {
			v = pairValues(v)
			continue
		}
		v = r.re.ReplaceAllString(v, r.repl)
	}
	return opaque.ReplaceAllStringFunc(v, func(m string) string {
		if randomLooking(m) {
			return Filtered
		}
		return m
	})
}

// Value returns a scrubbed copy of v, found under name: the whole value when the name is secret,
// else every string inside it, and the values of secret names within maps at any depth.
func (s *Scrubber) Value(name string, v any) any {
	if name != "" && SensitiveName(name) {
		if v == nil || v == "" {
			return v
		}
		return Filtered
	}
	switch t := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return t
	case string:
		return s.Text(t)
	case []byte:
		return s.Text(string(t))
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = s.Value(k, e)
		}
		return out
	case map[string]string:
		return s.Strings(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = s.Value("", e)
		}
		return out
	case []string:
		out := make([]string, len(t))
		for i, e := range t {
			out[i] = s.Text(e)
		}
		return out
	case error:
		return s.Text(t.Error())
	case fmt.Stringer:
		return s.Text(t.String())
	}
	// Anything else (a struct, a typed map) is taken apart as JSON, so that its fields are named.
	b, err := json.Marshal(v)
	if err != nil {
		return s.Text(fmt.Sprint(v))
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return s.Text(string(b))
	}
	return s.Value("", generic)
}

// Strings returns a scrubbed copy of m.
func (s *Scrubber) Strings(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if SensitiveName(k) && v != "" {
			out[k] = Filtered
		} else {
			out[k] = s.Text(v)
		}
	}
	return out
}

// Query returns a scrubbed query string or form body: the values of secret names removed, the rest
// scrubbed as text.
func (s *Scrubber) Query(q string) string {
	if q == "" {
		return q
	}
	values, err := url.ParseQuery(q)
	if err != nil {
		return s.Text(q)
	}
	for k, vs := range values {
		for i := range vs {
			if SensitiveName(k) {
				vs[i] = Filtered
			} else {
				vs[i] = s.Text(vs[i])
			}
		}
	}
	return values.Encode()
}

// URL returns a scrubbed URL: its password and query cleaned, the rest scrubbed as text.
func (s *Scrubber) URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return s.Text(raw)
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), Filtered)
	}
	u.RawQuery = s.Query(u.RawQuery)
	u.Fragment, u.RawFragment = "", ""
	return s.Text(u.String())
}

// body scrubs a request body: JSON by member names, a form by field names, anything else as text.
func (s *Scrubber) body(data string) string {
	trimmed := strings.TrimSpace(data)
	if strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[") {
		var v any
		if json.Unmarshal([]byte(trimmed), &v) == nil {
			if b, err := json.Marshal(s.Value("", v)); err == nil {
				return string(b)
			}
		}
		return s.Text(data)
	}
	if !strings.ContainsAny(trimmed, " \n") && strings.Contains(trimmed, "=") {
		return s.Query(trimmed)
	}
	return s.Text(data)
}

// alwaysSecretHeaders are sent as Filtered whatever their value.
var alwaysSecretHeaders = []string{"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}

// Event scrubs a Sentry event in place and returns it: the BeforeSend of every event fluxauth sends.
func (s *Scrubber) Event(ev *sentry.Event, _ *sentry.EventHint) *sentry.Event {
	if ev == nil {
		return nil
	}
	ev.Message = s.Text(ev.Message)
	ev.Transaction = s.Text(ev.Transaction)
	ev.ServerName = s.Text(ev.ServerName)
	for i, f := range ev.Fingerprint {
		ev.Fingerprint[i] = s.Text(f)
	}
	ev.Tags = s.Strings(ev.Tags)
	for name, c := range ev.Contexts {
		ev.Contexts[name] = s.Value("", c).(map[string]any)
	}
	for _, b := range ev.Breadcrumbs {
		b.Message = s.Text(b.Message)
		if b.Data != nil {
			b.Data = s.Value("", b.Data).(map[string]any)
		}
	}
	for i := range ev.Exception {
		ex := &ev.Exception[i]
		ex.Value = s.Text(ex.Value)
		if ex.Mechanism != nil && ex.Mechanism.Data != nil {
			ex.Mechanism.Data = s.Value("", ex.Mechanism.Data).(map[string]any)
		}
		s.stack(ex.Stacktrace)
	}
	for i := range ev.Threads {
		s.stack(ev.Threads[i].Stacktrace)
	}
	ev.User.Email = s.Text(ev.User.Email)
	ev.User.Name = s.Text(ev.User.Name)
	ev.User.Username = s.Text(ev.User.Username)
	ev.User.Data = s.Strings(ev.User.Data)
	if r := ev.Request; r != nil {
		r.URL = s.URL(r.URL)
		r.QueryString = s.Query(r.QueryString)
		r.Data = s.body(r.Data)
		if r.Cookies != "" {
			r.Cookies = Filtered
		}
		r.Headers = s.Strings(r.Headers)
		for k := range r.Headers {
			if slices.Contains(alwaysSecretHeaders, strings.ToLower(k)) {
				r.Headers[k] = Filtered
			}
		}
		r.Env = s.Strings(r.Env)
	}
	return ev
}

// stack scrubs the local variables a stack trace may carry (fluxauth's carry none).
func (s *Scrubber) stack(st *sentry.Stacktrace) {
	if st == nil {
		return
	}
	for i := range st.Frames {
		if st.Frames[i].Vars != nil {
			st.Frames[i].Vars = s.Value("", st.Frames[i].Vars).(map[string]any)
		}
	}
}
