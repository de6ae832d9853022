// Package mail owns the mails fluxauth sends (password reset, address verification): their
// templates, the transports that deliver them (SMTP through github.com/wneessen/go-mail, or the log
// for local development), and the Sender that works through the durable outbox, minting each mail's
// link token as it sends.
package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"net"
	"net/url"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// Message is one mail, ready to send.
type Message struct {
	To      string
	Subject string
	Text    string // the plain-text part
	HTML    string // the HTML alternative
}

//go:embed templates/*
var templateFiles embed.FS

var (
	textTemplates = texttemplate.Must(texttemplate.ParseFS(templateFiles, "templates/*.txt"))
	htmlTemplates = htmltemplate.Must(htmltemplate.ParseFS(templateFiles, "templates/*.html"))
)

// subjects are the mails' subjects, by kind.
var subjects = map[string]string{
	fluxauth.MailPasswordReset:        "Reset your FluxStudio password",
	fluxauth.MailVerifyEmail:          "Confirm your FluxStudio email address",
	fluxauth.MailIdentityLinkedGoogle: "A Google sign-in was linked to your FluxStudio account",
	fluxauth.MailIdentityLinkedApple:  "An Apple sign-in was linked to your FluxStudio account",
	fluxauth.MailRecoveryCodeUsed:     "A recovery code was used to sign in to your FluxStudio account",
}

// templateOf names the template of each kind: both link notices share one.
func templateOf(kind string) string {
	if providerOf(kind) != "" {
		return "identity_linked"
	}
	return kind
}

// providerOf is the provider a link notice names.
func providerOf(kind string) string {
	switch kind {
	case fluxauth.MailIdentityLinkedGoogle:
		return "Google"
	case fluxauth.MailIdentityLinkedApple:
		return "Apple"
	}
	return ""
}

// templateData is what the templates are given.
type templateData struct {
	Name    string
	Address string
	Link    string
	Expires string // "30 minutes", "48 hours"
	// Provider is the provider a link notice names ("Google", "Apple").
	Provider string
}

// Render builds the mail of kind for u with link, stating that the link expires in ttl. A notice
// (fluxauth.MailIsNotice) has no link: link and ttl are ignored.
func Render(kind string, u *fluxauth.User, link string, ttl time.Duration) (*Message, error) {
	subject, ok := subjects[kind]
	if !ok {
		return nil, fmt.Errorf("mail: no template for kind %q", kind)
	}
	data := templateData{Name: u.Name, Address: u.Email, Link: link, Expires: HumanDuration(ttl), Provider: providerOf(kind)}
	var text, html bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&text, templateOf(kind)+".txt", data); err != nil {
		return nil, err
	}
	if err := htmlTemplates.ExecuteTemplate(&html, templateOf(kind)+".html", data); err != nil {
		return nil, err
	}
	return &Message{To: u.Email, Subject: subject, Text: text.String(), HTML: html.String()}, nil
}

// HumanDuration says d as a mail does: "30 minutes", "1 hour", "48 hours", "90 seconds".
func HumanDuration(d time.Duration) string {
	unit := func(n int64, name string) string {
		if n == 1 {
			return "1 " + name
		}
		return strconv.FormatInt(n, 10) + " " + name + "s"
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	default:
		return unit(int64(d.Round(time.Second)/time.Second), "second")
	}
}

// TokenPlaceholder is what a link template holds where the token goes.
const TokenPlaceholder = "{token}"

// ValidLinkTemplate reports what is wrong with a link template (FLUXAUTH_RESET_URL,
// FLUXAUTH_VERIFY_URL), or nil: it must be an absolute http(s) URL holding {token}.
func ValidLinkTemplate(v string) error {
	if !strings.Contains(v, TokenPlaceholder) {
		return fmt.Errorf("must contain %s where the link's token goes", TokenPlaceholder)
	}
	u, err := url.Parse(strings.ReplaceAll(v, TokenPlaceholder, "t"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("must be an absolute http(s) URL such as https://app.example.com/reset?token=%s", TokenPlaceholder)
	}
	return nil
}

// Link fills a link template with a token (URL-safe already).
func Link(template, token string) string {
	return strings.ReplaceAll(template, TokenPlaceholder, token)
}

// Transport modes of FLUXAUTH_SMTP_URL.
const (
	ModeOff   = ""      // no mail: the flows that need it answer mail_unavailable
	ModeLog   = "log"   // mails are written to the log (local development)
	ModeSMTP  = "smtp"  // SMTP with STARTTLS required (unless NoTLS, loopback only)
	ModeSMTPS = "smtps" // SMTP over implicit TLS
)

// SMTPSettings is FLUXAUTH_SMTP_URL, parsed. Its String never shows the password.
type SMTPSettings struct {
	Mode     string
	Host     string
	Port     int
	Username string
	Password string
	// NoTLS sends in clear text (smtp://…?tls=none), which ParseSMTPURL allows on loopback only.
	NoTLS bool
}

// Enabled reports whether mail can be sent at all.
func (s SMTPSettings) Enabled() bool { return s.Mode != ModeOff }

// Real reports whether mail leaves the process (SMTP), as opposed to the log or nothing.
func (s SMTPSettings) Real() bool { return s.Mode == ModeSMTP || s.Mode == ModeSMTPS }

func (s SMTPSettings) String() string {
	switch s.Mode {
	case ModeOff:
		return "off"
	case ModeLog:
		return "log:"
	}
	u := url.URL{Scheme: s.Mode, Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port))}
	if s.Username != "" {
		u.User = url.User(s.Username)
	}
	if s.NoTLS {
		u.RawQuery = "tls=none"
	}
	return u.String()
}

// GoString keeps %#v from printing the password.
func (s SMTPSettings) GoString() string { return "mail.SMTPSettings{" + s.String() + "}" }

// ParseSMTPURL reads FLUXAUTH_SMTP_URL: "" (off), "log:", smtp://[user:pass@]host[:port][?tls=none]
// (port 587 by default, STARTTLS required; tls=none only for a loopback host) or
// smtps://[user:pass@]host[:port] (port 465 by default). Its errors never quote the URL.
func ParseSMTPURL(v string) (SMTPSettings, error) {
	switch v {
	case "":
		return SMTPSettings{}, nil
	case "log:":
		return SMTPSettings{Mode: ModeLog}, nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != ModeSMTP && u.Scheme != ModeSMTPS) || u.Hostname() == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") {
		return SMTPSettings{}, fmt.Errorf("must be smtp://user:pass@host:587, smtps://user:pass@host:465, log: or empty")
	}
	s := SMTPSettings{Mode: u.Scheme, Host: u.Hostname(), Port: 587}
	if u.Scheme == ModeSMTPS {
		s.Port = 465
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return SMTPSettings{}, fmt.Errorf("has an invalid port")
		}
		s.Port = n
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		if k != "tls" {
			return SMTPSettings{}, fmt.Errorf("has an unknown parameter %q (only tls=none is known)", k)
		}
	}
	switch tls := q.Get("tls"); {
	case !q.Has("tls"):
	case tls == "none" && u.Scheme == ModeSMTP:
		if !loopbackHost(s.Host) {
			return SMTPSettings{}, fmt.Errorf("tls=none is allowed only for a loopback host (127.0.0.1, ::1, localhost): mail and the SMTP password would cross the network in clear text")
		}
		s.NoTLS = true
	default:
		return SMTPSettings{}, fmt.Errorf("tls may only be none, and only with smtp://")
	}
	return s, nil
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
