package api

import (
	"net/http"

	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/oidc"
)

type googleRequest struct {
	IDToken           string `json:"idToken" check:"secret,16384"`
	Nonce             string `json:"nonce" check:"secret,512"`
	DeviceName        string `json:"deviceName" check:"text,255"`
	DeviceFingerprint string `json:"deviceFingerprint" check:"text,255"`
}

type appleRequest struct {
	IDToken           string `json:"idToken" check:"secret,16384"`
	Nonce             string `json:"nonce" check:"secret,512"`
	Name              string `json:"name" check:"text,400"`
	DeviceName        string `json:"deviceName" check:"text,255"`
	DeviceFingerprint string `json:"deviceFingerprint" check:"text,255"`
}

func (s *Server) google(w http.ResponseWriter, r *http.Request) error {
	var req googleRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	return s.idTokenSignIn(w, r, account.IDTokenInput{
		Provider: oidc.Google, IDToken: req.IDToken, Nonce: req.Nonce, Device: s.device(r, req.DeviceName, req.DeviceFingerprint),
	})
}

func (s *Server) apple(w http.ResponseWriter, r *http.Request) error {
	var req appleRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	return s.idTokenSignIn(w, r, account.IDTokenInput{
		Provider: oidc.Apple, IDToken: req.IDToken, Nonce: req.Nonce, Name: req.Name,
		Device: s.device(r, req.DeviceName, req.DeviceFingerprint),
	})
}

// idTokenSignIn answers 201 when the sign-in created the account, 200 otherwise.
func (s *Server) idTokenSignIn(w http.ResponseWriter, r *http.Request, in account.IDTokenInput) error {
	res, err := s.Accounts.SignInWithIDToken(r.Context(), in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	writeAuth(w, r, status, res)
	return nil
}
