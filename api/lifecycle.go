package api

import (
	"net/http"

	"github.com/fluxstudio/fluxauth/account"
)

// The account lifecycle's endpoints: password reset by mail, password change, address verification.

// accepted is the body of every 202: a reset request answers it whether or not an account has the
// address.
var accepted = map[string]string{"status": "accepted"}

func writeAccepted(w http.ResponseWriter, r *http.Request) {
	setRateLimitHeaders(w.Header(), limitsOf(r))
	writeJSON(w, http.StatusAccepted, accepted)
}

type forgotRequest struct {
	Email string `json:"email" check:"text,254"`
}

func (s *Server) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	var req forgotRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.Accounts.ForgotPassword(r.Context(), req.Email, s.device(r, "", "")); err != nil {
		return err
	}
	writeAccepted(w, r)
	return nil
}

// Link tokens are 43 characters; the bound leaves room and refuses nothing a client could mean.
type resetRequest struct {
	Token             string `json:"token" check:"secret,1024"`
	Password          string `json:"password" check:"secret,1024"`
	DeviceName        string `json:"deviceName" check:"text,255"`
	DeviceFingerprint string `json:"deviceFingerprint" check:"text,255"`
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) error {
	var req resetRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.Accounts.ResetPassword(r.Context(), account.ResetInput{
		Token: req.Token, Password: req.Password, Device: s.device(r, req.DeviceName, req.DeviceFingerprint),
	})
	if err != nil {
		return err
	}
	writeAuth(w, r, http.StatusOK, res)
	return nil
}

type changePasswordRequest struct {
	CurrentPassword string `json:"currentPassword" check:"secret,1024"`
	NewPassword     string `json:"newPassword" check:"secret,1024"`
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	var req changePasswordRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.Accounts.ChangePassword(r.Context(), p, account.ChangePasswordInput{
		CurrentPassword: req.CurrentPassword, NewPassword: req.NewPassword, Device: s.device(r, "", ""),
	}); err != nil {
		return err
	}
	setRateLimitHeaders(w.Header(), limitsOf(r))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// verifyRequest is the link's token with, from someone not signed in, the account's email and
// password (and the device's token, as at login); a signed-in owner sends its Bearer token instead.
type verifyRequest struct {
	Token       string `json:"token" check:"secret,1024"`
	Email       string `json:"email" check:"text,254"`
	Password    string `json:"password" check:"secret,1024"`
	DeviceToken string `json:"deviceToken" check:"secret,1024"`
}

func (s *Server) verifyEmail(w http.ResponseWriter, r *http.Request) error {
	var req verifyRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	in := account.VerifyInput{Token: req.Token, Email: req.Email, Password: req.Password,
		DeviceToken: req.DeviceToken, Device: s.device(r, "", "")}
	if r.Header.Get("Authorization") != "" {
		p, err := s.Accounts.Authenticate(r.Context(), r.Header.Get("Authorization"), in.Device)
		if err != nil {
			return err
		}
		in.Principal = p
	}
	u, err := s.Accounts.VerifyEmail(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]userJSON{"user": userOf(u)})
	return nil
}

func (s *Server) resendVerification(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	if err := s.Accounts.ResendVerification(r.Context(), p, s.device(r, "", "")); err != nil {
		return err
	}
	writeAccepted(w, r)
	return nil
}
