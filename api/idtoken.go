package api

import (
	"net/http"

	"github.com/fluxstudio/fluxauth"
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

type linkIdentityRequest struct {
	IDToken string `json:"idToken" check:"secret,16384"`
	Nonce   string `json:"nonce" check:"secret,512"`
}

// linkIdentity links the ID token's identity to the caller's account: 201 when it linked it, 200
// when it was linked to the account already.
func (s *Server) linkIdentity(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	provider, err := identityProvider(r)
	if err != nil {
		return err
	}
	var req linkIdentityRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.Accounts.LinkIdentity(r.Context(), p, account.IDTokenInput{
		Provider: provider, IDToken: req.IDToken, Nonce: req.Nonce, Device: s.device(r, "", ""),
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	id := res.Identity
	writeJSON(w, status, map[string]any{"identity": identityJSON{Provider: id.Provider, Email: id.Email, EmailVerified: id.EmailVerified, CreatedAt: id.CreatedAt}})
	return nil
}

// unlinkIdentity removes the caller's identities of the provider: 204.
func (s *Server) unlinkIdentity(w http.ResponseWriter, r *http.Request, p *account.Principal) error {
	provider, err := identityProvider(r)
	if err != nil {
		return err
	}
	if err := s.Accounts.UnlinkIdentity(r.Context(), p, provider, s.device(r, "", "")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// identityProvider is the {provider} of an identities path: google or apple, else 404 with a fixed
// message (the path is the caller's text, never echoed).
func identityProvider(r *http.Request) (string, error) {
	switch p := r.PathValue("provider"); p {
	case oidc.Google, oidc.Apple:
		return p, nil
	}
	return "", fluxauth.Errorf(fluxauth.ENotFound, "Unknown provider: the identities paths are /api/auth/identities/google and /api/auth/identities/apple.")
}
