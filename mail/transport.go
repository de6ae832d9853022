package mail

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Transport delivers a Message.
type Transport interface {
	Send(ctx context.Context, m *Message) error
}

// sendTimeout bounds each network step of one delivery (connect, each SMTP command): a server that
// stopped answering holds a mail no longer than this before it is retried.
const sendTimeout = 30 * time.Second

// SMTP delivers over SMTP with go-mail: STARTTLS required (smtp://), implicit TLS (smtps://), or,
// for a server on loopback only, clear text (tls=none). A connection per mail: mails are rare.
type SMTP struct {
	settings SMTPSettings
	from     string
}

// NewSMTP returns the transport of settings (Real), sending from from ("FluxStudio <no-reply@…>").
func NewSMTP(settings SMTPSettings, from string) *SMTP { return &SMTP{settings: settings, from: from} }

// Send delivers m.
func (t *SMTP) Send(ctx context.Context, m *Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(t.from); err != nil {
		return err
	}
	if err := msg.To(m.To); err != nil {
		return err
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	c, err := gomail.NewClient(t.settings.Host, t.options()...)
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, msg)
}

// options are the go-mail client options of the settings.
func (t *SMTP) options() []gomail.Option {
	s := t.settings
	opts := []gomail.Option{gomail.WithPort(s.Port), gomail.WithTimeout(sendTimeout)}
	switch {
	case s.Mode == ModeSMTPS:
		opts = append(opts, gomail.WithSSL())
	case s.NoTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if s.NoTLS {
			auth = gomail.SMTPAuthPlainNoEnc // the server is on loopback (ParseSMTPURL)
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.Username), gomail.WithPassword(s.Password))
	}
	return opts
}

// Log writes each mail to the log instead of sending it: FLUXAUTH_SMTP_URL=log:, for local
// development. It is the one place a link token reaches a log, and serve warns about it at start.
type Log struct{ Logger *slog.Logger }

// Send logs m.
func (t Log) Send(ctx context.Context, m *Message) error {
	t.Logger.WarnContext(ctx, "mail not sent (FLUXAUTH_SMTP_URL=log:): its text follows",
		"to", m.To, "subject", m.Subject, "text", m.Text)
	return nil
}

// ErrorClass names the kind of a delivery failure for the outbox and the log, without its text
// (which may quote the server): "unreachable", "timeout", "rejected" (a permanent SMTP error),
// "temporary" (a 4xx), "interrupted" (shutdown) or "failed".
func ErrorClass(err error) string {
	var se *gomail.SendError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &se) && se.IsTemp():
		return "temporary"
	case errors.As(err, &se):
		return "rejected"
	case errors.As(err, &ne):
		return "unreachable"
	}
	return "failed"
}
