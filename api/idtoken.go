package api

import (
	"net/http"

	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/oidc"
)

type googleRequest struct {
	IDToken           string `json:"idToken"`
	Nonce             string `json:"nonce"`
	DeviceName        string `json:"deviceName"`
	DeviceFingerprint string `json:"deviceFingerprint"`
}

type appleRequest struct {
	IDToken           string `json:"idToken"`
	Nonce             string `json:"nonce"`
	Name              string `json:"name"`
	DeviceName        string `json:"deviceName"`
	DeviceFingerprint string `json:"deviceFingerprint"`
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
