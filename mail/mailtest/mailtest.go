// Package mailtest is an SMTP server on loopback for tests: it captures the mails fluxauth sends,
// decoded into their plain-text and HTML parts, and can be taken down and brought back up on the
// same address to play an outage. It is built on github.com/emersion/go-smtp's server.
package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one captured mail.
type Message struct {
	From    string   // the envelope sender
	To      []string // the envelope recipients
	Header  mail.Header
	Subject string
	Text    string // the text/plain part, decoded
	HTML    string // the text/html part, decoded
	Raw     []byte
}

// Server is a running capture server.
type Server struct {
	tb       testing.TB
	addr     string
	username string
	password string

	mu      sync.Mutex
	srv     *smtp.Server
	ln      net.Listener
	msgs    []*Message
	arrived chan struct{}
}

// Option configures a Server.
type Option func(*Server)

// RequireAuth makes the server refuse mail until the client authenticates (AUTH PLAIN) as user
// with password.
func RequireAuth(user, password string) Option {
	return func(s *Server) { s.username, s.password = user, password }
}

// NewServer starts a server on a free loopback port, stopped when tb ends.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{tb: tb, addr: "127.0.0.1:0", arrived: make(chan struct{}, 1)}
	for _, o := range opts {
		o(s)
	}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// URL is FLUXAUTH_SMTP_URL for the server: clear text, which fluxauth allows on loopback only.
func (s *Server) URL() string {
	user := ""
	if s.username != "" {
		user = s.username + ":" + s.password + "@"
	}
	return "smtp://" + user + s.addr + "?tls=none"
}

// Addr is the server's host:port; it stays the same across Stop and Start.
func (s *Server) Addr() string { return s.addr }

// Start brings the server (back) up on its address.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	// The port may take a moment to be free again after Stop.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", s.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		s.tb.Fatalf("mailtest: listen on %s: %v", s.addr, err)
	}
	s.addr = ln.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	srv.Domain = "mailtest.local"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = discard{}
	s.srv, s.ln = srv, ln
	go srv.Serve(ln)
}

// Stop takes the server down: connections are refused until Start.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// The listener is closed here too: Serve may not have registered it with srv yet.
		ln.Close()
		srv.Close()
	}
}

// Messages returns the mails captured so far, in order.
func (s *Server) Messages() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Message(nil), s.msgs...)
}

// Wait returns the captured mails once there are at least n, failing tb after timeout.
func (s *Server) Wait(tb testing.TB, n int, timeout time.Duration) []*Message {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if msgs := s.Messages(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-s.arrived:
		case <-deadline.C:
			tb.Fatalf("mailtest: %d mails after %s, want %d", len(s.Messages()), timeout, n)
		}
	}
}

func (s *Server) capture(m *Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
}

// LinkToken returns the token in the first link of m's plain-text part whose URL starts with
// prefix and carries token=…, failing tb when there is none.
func LinkToken(tb testing.TB, m *Message, prefix string) string {
	tb.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(prefix) + `\S*[?&]token=([A-Za-z0-9_-]+)`)
	match := re.FindStringSubmatch(m.Text)
	if match == nil {
		tb.Fatalf("mailtest: no link starting %s with a token in:\n%s", prefix, m.Text)
	}
	return match[1]
}

type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

func (se *session) AuthMechanisms() []string {
	if se.s.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != se.s.username || password != se.s.password {
			return errors.New("invalid credentials")
		}
		se.authed = true
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.username != "" && !se.authed {
		return smtp.ErrAuthRequired
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "mailtest: unparsable message: " + err.Error()}
	}
	m.From, m.To = se.from, se.to
	se.s.capture(m)
	return nil
}

func (se *session) Reset()        { se.from, se.to = "", nil }
func (se *session) Logout() error { return nil }

// parse decodes a MIME message into its subject and its text and HTML parts.
func parse(raw []byte) (*Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return nil, err
	}
	m := &Message{Header: msg.Header, Subject: subject, Raw: raw}
	if err := m.addPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Message) addPart(contentType, encoding string, body io.Reader) error {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.addPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	switch mediaType {
	case "text/plain":
		m.Text = string(b)
	case "text/html":
		m.HTML = string(b)
	default:
		return fmt.Errorf("unexpected part %s", mediaType)
	}
	return nil
}

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}
