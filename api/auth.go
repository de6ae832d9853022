package api

import (
	"net/http"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
)

type userJSON struct {
	ID       string `json:"id"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	UserType string `json:"userType"`
	// EmailVerified: the owner has proven the address (a verification or reset link, or a Google or
	// Apple sign-in that vouched for it).
	EmailVerified bool `json:"emailVerified"`
}

func userOf(u *fluxauth.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, UserType: u.UserType, EmailVerified: u.EmailVerified()}
}

// authResponse is the AuthResponse the legacy server answered, which old clients parse; token is the legacy field old clients read.
type authResponse struct {
	Token        string   `json:"token"`
	AccessToken  string   `json:"accessToken"`
	RefreshToken string   `json:"refreshToken"`
	ExpiresIn    int      `json:"expiresIn"`
	TokenType    string   `json:"tokenType"`
	User         userJSON `json:"user"`
	// DeviceToken is returned by password sign-ins only; later logins send it back.
	DeviceToken string `json:"deviceToken,omitempty"`
}

func writeAuth(w http.ResponseWriter, r *http.Request, status int, res *account.Result) {
	setRateLimitHeaders(w.Header(), limitsOf(r))
	writeJSON(w, status, authResponse{
		Token: res.AccessToken, AccessToken: res.AccessToken, RefreshToken: res.RefreshToken,
		ExpiresIn: res.ExpiresIn, TokenType: "Bearer", User: userOf(res.User), DeviceToken: res.DeviceToken,
	})
}

// device collects what the request says about the client's device.
func (s *Server) device(r *http.Request, name, fingerprint string) account.Device {
	if h := r.Header.Get("X-Device-Fingerprint"); h != "" {
		fingerprint = h
	}
	return account.Device{Name: name, Fingerprint: fingerprint, IP: s.clientIP(r), UserAgent: r.UserAgent()}
}

// Bounds of the request bodies (see fields.go). An email address has at most 254 bytes (RFC 5321); a
// name at most 100 characters, which the account rules count; device strings fit their columns. A
// password is bounded well above the policy's 128 characters, so a legacy password longer than the
// policy still signs in; an ID token is a JWT of a few KB.
type signupRequest struct {
	Email             string `json:"email" check:"text,254"`
	Password          string `json:"password" check:"secret,1024"`
	Name              string `json:"name" check:"text,400"`
	UserType          string `json:"userType" check:"text,64"`
	DeviceName        string `json:"deviceName" check:"text,255"`
	DeviceFingerprint string `json:"deviceFingerprint" check:"text,255"`
}

func (s *Server) signup(w http.ResponseWriter, r *http.Request) error {
	var req signupRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.Accounts.Signup(r.Context(), account.SignupInput{
		Email: req.Email, Password: req.Password, Name: req.Name, UserType: req.UserType,
		Device: s.device(r, req.DeviceName, req.DeviceFingerprint),
	})
	if err != nil {
		return err
	}
	writeAuth(w, r, http.StatusCreated, res)
	return nil
}

type loginRequest struct {
	Email             string `json:"email" check:"text,254"`
	Password          string `json:"password" check:"secret,1024"`
	DeviceToken       string `json:"deviceToken" check:"secret,1024"`
	DeviceName        string `json:"deviceName" check:"text,255"`
	DeviceFingerprint string `json:"deviceFingerprint" check:"text,255"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.Accounts.Login(r.Context(), account.LoginInput{
		Email: req.Email, Password: req.Password, DeviceToken: req.DeviceToken,
		Device: s.device(r, req.DeviceName, req.DeviceFingerprint),
	})
	if err != nil {
		return err
	}
	writeAuth(w, r, http.StatusOK, res)
	return nil
}

type refreshRequest struct {
	RefreshToken      string `json:"refreshToken" check:"secret,1024"`
	DeviceFingerprint string `json:"deviceFingerprint" check:"text,255"`
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) error {
	var req refreshRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.Accounts.Refresh(r.Context(), req.RefreshToken, s.device(r, "", req.DeviceFingerprint))
	if err != nil {
		return err
	}
	writeAuth(w, r, http.StatusOK, res)
	return nil
}

type legacyExchangeRequest struct {
	Token             string `json:"token" check:"secret,8192"`
	DeviceName        string `json:"deviceName" check:"text,255"`
	DeviceFingerprint string `json:"deviceFingerprint" check:"text,255"`
}

// exchangeLegacyToken turns a token of the legacy server into a session, during the cutover.
func (s *Server) exchangeLegacyToken(w http.ResponseWriter, r *http.Request) error {
	if !s.Accounts.LegacyEnabled(s.Accounts.Clock.Now()) {
		return account.ErrLegacyOff // before the body is read, as for a path it does not serve
	}
	var req legacyExchangeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.Accounts.ExchangeLegacyToken(r.Context(), req.Token, s.device(r, req.DeviceName, req.DeviceFingerprint))
	if err != nil {
		return err
	}
	writeAuth(w, r, http.StatusOK, res)
	return nil
}

// authedFunc is a handler that needs a verified caller.
type authedFunc func(w http.ResponseWriter, r *http.Request, p *account.Principal) error

func (s *Server) authed(fn authedFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.Accounts.Authenticate(r.Context(), r.Header.Get("Authorization"), s.device(r, "", ""))
		if err != nil {
			return err
		}
		return fn(w, r, p)
	}
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	u, err := s.Accounts.Me(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]userJSON{"user": userOf(u)})
	return nil
}

type sessionJSON struct {
	ID         string    `json:"id"`
	DeviceName string    `json:"deviceName"`
	IPAddress  string    `json:"ipAddress"`
	UserAgent  string    `json:"userAgent"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	Current    bool      `json:"current"`
}

func (s *Server) sessions(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	list, err := s.Accounts.Sessions(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string][]sessionJSON{"sessions": sessionsJSON(list)})
	return nil
}

func sessionsJSON(list []account.Session) []sessionJSON {
	out := make([]sessionJSON, 0, len(list))
	for _, x := range list {
		out = append(out, sessionJSON{
			ID: x.ID, DeviceName: x.DeviceName, IPAddress: x.IPAddress, UserAgent: x.UserAgent,
			CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt, ExpiresAt: x.ExpiresAt, Current: x.Current,
		})
	}
	return out
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	if err := s.Accounts.RevokeSession(r.Context(), p, r.PathValue("id"), s.device(r, "", "")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	if err := s.Accounts.Logout(r.Context(), p, s.device(r, "", "")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) logoutAll(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	if err := s.Accounts.LogoutAll(r.Context(), p, s.device(r, "", "")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(s.Accounts.JWKS())
	return err
}
