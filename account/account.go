// Package account owns fluxauth's authentication rules: signup, login, refresh-token rotation with
// reuse detection, sessions and their revocation, sign-in with external identity providers. It is the
// one place that decides which security events happen.
package account

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/oidc"
	"github.com/fluxstudio/fluxauth/password"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/token"
)

// Config holds the rules' tunables. Their defaults and validation live in internal/config.
type Config struct {
	RefreshTTL      time.Duration // lifetime of one refresh token, extended on each use
	SessionMaxAge   time.Duration // absolute limit of a session, counted from its start
	RefreshGrace    time.Duration // how long a spent token may still be presented (concurrent tabs)
	SignupUserTypes []string      // the user types a client may choose at signup
	// FingerprintRevoke ends a session whose refresh presents a different device fingerprint; when
	// false the mismatch is only recorded.
	FingerprintRevoke bool
	// SuspiciousRefreshRate: a refresh that comes sooner after the session's previous refresh than
	// one interval of this rate is recorded as suspicious_token_usage (not refused); zero disables it.
	SuspiciousRefreshRate ratelimit.Limit
	// CheckSessionOwner refuses an access token whose session belongs to another user than its sub.
	// Required with HS256, where every service holding the shared secret can mint any sub and sid;
	// with ES256 only fluxauth signs, so it may be turned off to spare the lookup.
	CheckSessionOwner bool
}

// Revocations tells every instance which sessions have ended, so their access tokens stop working
// before they expire.
type Revocations interface {
	// Announce tells every instance that the session has ended; its access tokens live at most
	// until until. The database already records the revocation; this makes it seen sooner.
	Announce(ctx context.Context, sessionID string, until time.Time) error
	// IsRevoked reports whether the session was ended.
	IsRevoked(ctx context.Context, sessionID string) (bool, error)
	// Owner returns the ID of the user the session belongs to; fluxauth.ErrNotFound if it never
	// existed.
	Owner(ctx context.Context, sessionID string) (string, error)
}

// Recorder keeps security events and passes them on to live subscribers.
type Recorder interface {
	// Record keeps events that are not part of a write transaction.
	Record(ctx context.Context, events ...*fluxauth.SecurityEvent) error
	// Committed passes on events already written inside a committed transaction.
	Committed(events ...*fluxauth.SecurityEvent)
}

// Service applies the rules. Build it with every field set.
type Service struct {
	Store     fluxauth.Store
	Passwords *password.Hasher
	Tokens    *token.Issuer
	// Refreshes mints and derives refresh tokens with the secret every instance shares.
	Refreshes   *token.RefreshMinter
	Revocations Revocations
	Events      Recorder
	Clock       fluxauth.Clock
	Rand        io.Reader
	Logger      *slog.Logger
	Config      Config
	// Providers verify Google and Apple ID tokens, keyed by oidc.Google and oidc.Apple.
	Providers map[string]*oidc.Verifier
	// Limiter enforces Rules; nil disables rate limiting.
	Limiter ratelimit.Limiter
	Rules   ratelimit.Rules
}

// Result is what a successful signup, login, refresh or external sign-in returns.
type Result struct {
	User         *fluxauth.User
	AccessToken  string
	RefreshToken string
	ExpiresIn    int // seconds
	SessionID    string
	Created      bool // a new account was made
}

// Principal is the caller proven by a valid access token.
type Principal struct {
	UserID    string
	SessionID string
	Email     string
	UserType  string
}

// Now is the service's clock: the time its sessions and events are stamped with, so a report over
// them (the admin summary's window) agrees with what was written.
func (s *Service) Now() time.Time { return s.Clock.Now() }

// JWKS returns the public keys access tokens are verified with, as a JSON Web Key Set.
func (s *Service) JWKS() []byte { return s.Tokens.JWKS() }

func (s *Service) newID() string {
	id, err := uuid.NewV7FromReader(s.Rand)
	if err != nil {
		// The reader is crypto/rand in production; failing it is not recoverable.
		panic("account: random source failed: " + err.Error())
	}
	return id.String()
}

// SignupInput is the body of POST /api/auth/signup.
type SignupInput struct {
	Email, Password, Name, UserType string
	Device                          Device
}

// NormalizeEmail trims the address; case is kept as typed but never matters for lookups.
func NormalizeEmail(s string) string { return strings.TrimSpace(s) }

func validEmail(email string) bool {
	if len(email) > 254 || strings.ContainsAny(email, " \t\r\n<>\"") {
		return false
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email {
		return false
	}
	at := strings.LastIndexByte(email, '@')
	return at > 0 && strings.Contains(email[at+1:], ".") && !strings.HasSuffix(email, ".")
}

// Signup creates an account and its first session.
func (s *Service) Signup(ctx context.Context, in SignupInput) (*Result, error) {
	in.Email = NormalizeEmail(in.Email)
	in.Name = strings.TrimSpace(in.Name)
	in.UserType = strings.TrimSpace(in.UserType)
	if in.UserType == "" {
		in.UserType = fluxauth.UserTypeClient
	}
	var v fluxauth.ValidationError
	if !validEmail(in.Email) {
		v.Add("email", "must be a valid email address")
	}
	if err := password.CheckPolicy(in.Password); err != nil {
		var fe *fluxauth.Error
		if errors.As(err, &fe) && fe.Fields["password"] != "" {
			v.Add("password", fe.Fields["password"])
		} else {
			v.Add("password", "is not acceptable")
		}
	}
	if in.Name == "" {
		v.Add("name", "is required")
	} else if utf8.RuneCountInString(in.Name) > 100 {
		v.Add("name", "must be at most 100 characters")
	}
	if in.UserType == fluxauth.UserTypeAdmin || !slices.Contains(s.Config.SignupUserTypes, in.UserType) {
		v.Add("userType", "must be one of: "+strings.Join(s.Config.SignupUserTypes, ", "))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.allow(ctx, "signup:ip", s.Rules.Signup, in.Device, in.Device.IP); err != nil {
		return nil, err
	}
	hash, err := s.Passwords.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	now := s.Clock.Now()
	u := &fluxauth.User{
		ID: s.newID(), Email: in.Email, Name: in.Name, UserType: in.UserType,
		PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
	}
	dev := in.Device.normalized()
	var res *Result
	err = s.update(ctx, func(tx fluxauth.Tx) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			if errors.Is(err, fluxauth.ErrConflict) {
				return fluxauth.Errorf(fluxauth.EEmailTaken, "An account with this email already exists.")
			}
			return err
		}
		var err error
		res, err = s.startSession(ctx, tx, u, dev, now, fluxauth.EventSignup, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	res.Created = true
	return res, nil
}

// LoginInput is the body of POST /api/auth/login.
type LoginInput struct {
	Email, Password string
	Device          Device
}

var errInvalidCredentials = fluxauth.Errorf(fluxauth.EInvalidCredentials, "The email or password is incorrect.")

// Login checks a password and starts a session. An unknown email costs the same hashing work and
// gets the same answer as a wrong password, so responses do not reveal which accounts exist.
func (s *Service) Login(ctx context.Context, in LoginInput) (*Result, error) {
	in.Email = NormalizeEmail(in.Email)
	var v fluxauth.ValidationError
	if in.Email == "" {
		v.Add("email", "is required")
	}
	if in.Password == "" {
		v.Add("password", "is required")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	dev := in.Device.normalized()
	if err := s.allow(ctx, "login:ipemail", s.Rules.LoginIPEmail, dev, dev.IP, strings.ToLower(in.Email)); err != nil {
		return nil, err
	}
	if err := s.allow(ctx, "login:ip", s.Rules.LoginIP, dev, dev.IP); err != nil {
		return nil, err
	}
	u, err := s.Store.UserByEmail(ctx, in.Email)
	if err != nil && !errors.Is(err, fluxauth.ErrNotFound) {
		return nil, err
	}
	userID := ""
	if u != nil {
		userID = u.ID
	}
	if err := s.attemptLogin(ctx, in.Email, userID, dev); err != nil {
		return nil, err
	}
	if u == nil || u.PasswordHash == "" {
		if err := s.Passwords.VerifyDummy(ctx, in.Password); err != nil {
			return nil, err
		}
		reason := "unknown_email"
		if u != nil {
			reason = "no_password"
		}
		if err := s.recordFailedLogin(ctx, userID, in.Email, reason, dev); err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials
	}
	ok, rehash, err := s.Passwords.Verify(ctx, u.PasswordHash, in.Password)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) {
		return nil, err
	}
	if !ok {
		if err := s.recordFailedLogin(ctx, u.ID, in.Email, "wrong_password", dev); err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials
	}
	s.loginSucceeded(ctx, in.Email)
	if rehash {
		s.upgradeHash(ctx, u, in.Password)
	}
	return s.login(ctx, u, dev, fluxauth.EventLoginSuccess, map[string]any{"method": "password"})
}

// upgradeHash rehashes a legacy or outdated hash with the current parameters. Failing it must not
// fail the login: the old hash still works.
func (s *Service) upgradeHash(ctx context.Context, u *fluxauth.User, pw string) {
	hash, err := s.Passwords.Hash(ctx, pw)
	if err == nil {
		err = s.Store.SetPasswordHash(ctx, u.ID, hash, s.Clock.Now())
	}
	if err != nil {
		s.Logger.WarnContext(ctx, "password rehash failed", "user_id", u.ID, "err", err)
	}
}

func (s *Service) recordFailedLogin(ctx context.Context, userID, email, reason string, dev Device) error {
	return s.record(ctx, &fluxauth.SecurityEvent{
		Type: fluxauth.EventFailedLogin, Severity: fluxauth.SeverityWarning, UserID: userID,
		Metadata: map[string]any{"reason": reason, "email": email},
	}, dev)
}

// login starts a session for an authenticated user.
func (s *Service) login(ctx context.Context, u *fluxauth.User, dev Device, event string, meta map[string]any) (*Result, error) {
	now := s.Clock.Now()
	var res *Result
	err := s.update(ctx, func(tx fluxauth.Tx) error {
		var err error
		res, err = s.startSession(ctx, tx, u, dev, now, event, meta)
		return err
	})
	return res, err
}

// startSession writes a session's first refresh token, with its events, inside tx.
func (s *Service) startSession(ctx context.Context, tx fluxauth.Tx, u *fluxauth.User, dev Device, now time.Time, event string, meta map[string]any) (*Result, error) {
	active, err := tx.ActiveSessions(ctx, u.ID, now)
	if err != nil {
		return nil, err
	}
	sessionID := s.newID()
	raw, hash, err := s.Refreshes.New(s.Rand, sessionID)
	if err != nil {
		return nil, err
	}
	rt := &fluxauth.RefreshToken{
		ID: s.newID(), SessionID: sessionID, UserID: u.ID, TokenHash: hash,
		DeviceName: dev.Name, DeviceFingerprint: dev.Fingerprint, IPAddress: dev.IP, UserAgent: dev.UserAgent,
		SessionCreatedAt: now, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: s.expiry(now, now),
	}
	if err := tx.InsertRefreshToken(ctx, rt); err != nil {
		return nil, err
	}
	events := []*fluxauth.SecurityEvent{s.event(event, fluxauth.SeverityInfo, u.ID, rt.ID, dev, withSession(meta, rt.SessionID))}
	if len(active) > 0 && !knownDevice(active, dev) {
		events = append(events, s.event(fluxauth.EventMultipleDeviceLogin, fluxauth.SeverityInfo, u.ID, rt.ID, dev,
			map[string]any{"activeSessions": len(active), "sessionId": rt.SessionID, "deviceName": dev.Name}))
	}
	if err := tx.InsertEvents(ctx, events...); err != nil {
		return nil, err
	}
	return s.result(u, rt, raw)
}

// knownDevice reports whether dev matches one of the sessions: by fingerprint when both have one,
// else by device name and user agent.
func knownDevice(sessions []*fluxauth.RefreshToken, dev Device) bool {
	for _, t := range sessions {
		if dev.Fingerprint != "" && t.DeviceFingerprint != "" {
			if dev.Fingerprint == t.DeviceFingerprint {
				return true
			}
			continue
		}
		if t.DeviceName == dev.Name && t.UserAgent == dev.UserAgent {
			return true
		}
	}
	return false
}

func withSession(meta map[string]any, sessionID string) map[string]any {
	m := make(map[string]any, len(meta)+1)
	for k, v := range meta {
		m[k] = v
	}
	m["sessionId"] = sessionID
	return m
}

// expiry extends a refresh token's life from now, but never past the session's absolute limit.
func (s *Service) expiry(now, sessionStart time.Time) time.Time {
	exp := now.Add(s.Config.RefreshTTL)
	if limit := sessionStart.Add(s.Config.SessionMaxAge); exp.After(limit) {
		exp = limit
	}
	return exp
}

func (s *Service) result(u *fluxauth.User, rt *fluxauth.RefreshToken, raw string) (*Result, error) {
	access, _, err := s.Tokens.Sign(token.Claims{UserID: u.ID, SessionID: rt.SessionID, Email: u.Email, UserType: u.UserType})
	if err != nil {
		return nil, err
	}
	return &Result{
		User: u, AccessToken: access, RefreshToken: raw, SessionID: rt.SessionID,
		ExpiresIn: int(s.Tokens.TTL() / time.Second),
	}, nil
}

func (s *Service) event(typ, severity, userID, tokenID string, dev Device, meta map[string]any) *fluxauth.SecurityEvent {
	return &fluxauth.SecurityEvent{
		ID: s.newID(), Type: typ, Severity: severity, UserID: userID, TokenID: tokenID,
		IPAddress: dev.IP, UserAgent: dev.UserAgent, Metadata: meta, CreatedAt: s.Clock.Now(),
	}
}

// record writes an event that is not part of a transaction, filling in what the caller left out. Its
// error fails the request (503 when the database is down) rather than losing the event.
func (s *Service) record(ctx context.Context, ev *fluxauth.SecurityEvent, dev Device) error {
	if ev.ID == "" {
		ev.ID = s.newID()
	}
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = s.Clock.Now()
	}
	if ev.IPAddress == "" {
		ev.IPAddress = dev.IP
	}
	if ev.UserAgent == "" {
		ev.UserAgent = dev.UserAgent
	}
	return s.Events.Record(ctx, ev)
}
