// Package oidctest provides a local OpenID Connect issuer on loopback that stands in for Google and
// Apple in tests: a discovery document, a JWKS, RS256 signing with keys made in the test, key
// rotation, and outages (stopped, or answering an error status) at a stable address.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// ClientID is the audience of the default claims; configure it as a client id of the verifier.
const ClientID = "oidctest-client"

// Subject is the sub of the default claims.
const Subject = "oidctest-subject"

// JWKSPath is where the issuer publishes its keys.
const JWKSPath = "/jwks"

// Issuer is a running OpenID Connect issuer. Its methods are safe for concurrent use.
type Issuer struct {
	// Now dates the default claims; tests that inject a fixed clock into the verifier set it to the
	// same clock. Set it before use. Nil means time.Now.
	Now func() time.Time

	addr string // fixed for the issuer's life, so a restarted issuer is the same issuer

	mu        sync.Mutex
	keys      []*signingKey // all published; the last one signs
	srv       *http.Server
	served    chan struct{} // closed when srv's Serve returned
	status    int           // non-zero: every request is answered with it
	discovery int           // requests for the discovery document
	jwks      int           // requests for the JWKS
}

type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

// NewIssuer starts an issuer on a loopback port; it is closed when tb's test ends.
func NewIssuer(tb testing.TB) *Issuer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("oidctest: listen: %v", err)
	}
	i := &Issuer{addr: ln.Addr().String()}
	i.keys = []*signingKey{{kid: "oidctest-key-1", key: publishedKey(tb, 0)}}
	i.serve(ln)
	tb.Cleanup(i.Close)
	return i
}

// URL returns the issuer URL: the iss of its tokens and the base of its discovery document.
func (i *Issuer) URL() string { return "http://" + i.addr }

// Claims returns valid claims for a token of this issuer: iss, aud ClientID, sub Subject, a
// verified email, a name, issued now and expiring in an hour, and a jti of its own (as Google
// sends; Apple sends none), so that each call makes a different token. The email is
// user@example.com and hd is example.com: a Google Workspace account of example.com, so Google
// is the authority for its address (fluxauth links and proves it; Apple never is for example.com).
// Tests change or delete entries to make the token they need.
func (i *Issuer) Claims() map[string]any {
	now := time.Now()
	if i.Now != nil {
		now = i.Now()
	}
	return map[string]any{
		"iss":            i.URL(),
		"aud":            ClientID,
		"sub":            Subject,
		"email":          "user@example.com",
		"email_verified": true,
		"hd":             "example.com",
		"name":           "Test User",
		"iat":            now.Unix(),
		"exp":            now.Add(time.Hour).Unix(),
		"jti":            rand.Text(),
	}
}

// Sign returns claims as a compact RS256 JWS signed with the current key, its kid in the header.
func (i *Issuer) Sign(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	i.mu.Lock()
	k := i.keys[len(i.keys)-1]
	i.mu.Unlock()
	return sign(tb, k.kid, k.key, claims)
}

// SignWithForeignKey signs claims with a key no issuer ever publishes, under the current kid:
// a forgery that only the signature check can catch.
func (i *Issuer) SignWithForeignKey(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	i.mu.Lock()
	kid := i.keys[len(i.keys)-1].kid
	i.mu.Unlock()
	return sign(tb, kid, foreignKey(tb), claims)
}

// SignWithUnknownKey signs claims with a key no issuer ever publishes, under kid: a forgery naming
// a key the verifier has not seen, such as one rotated in since it fetched the keys.
func (i *Issuer) SignWithUnknownKey(tb testing.TB, kid string, claims map[string]any) string {
	tb.Helper()
	return sign(tb, kid, foreignKey(tb), claims)
}

// RotateKey makes a new key, under a new kid, the signing key. The old keys stay published, as
// providers keep them while tokens signed with them live.
func (i *Issuer) RotateKey(tb testing.TB) {
	tb.Helper()
	i.mu.Lock()
	n := len(i.keys)
	i.mu.Unlock()
	key := publishedKey(tb, n)
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.keys) != n {
		tb.Fatalf("oidctest: RotateKey called concurrently")
	}
	i.keys = append(i.keys, &signingKey{kid: fmt.Sprintf("oidctest-key-%d", n+1), key: key})
}

// Fail makes every endpoint answer status (e.g. 503) until Fail(0).
func (i *Issuer) Fail(status int) {
	i.mu.Lock()
	i.status = status
	i.mu.Unlock()
}

// Stop closes the listener and every connection, so requests are refused as by a provider that is
// down. Start brings it back at the same address.
func (i *Issuer) Stop(tb testing.TB) {
	tb.Helper()
	if err := i.stop(); err != nil {
		tb.Fatalf("oidctest: stop: %v", err)
	}
}

// Start listens again at the issuer's address after Stop.
func (i *Issuer) Start(tb testing.TB) {
	tb.Helper()
	i.mu.Lock()
	running := i.srv != nil
	i.mu.Unlock()
	if running {
		tb.Fatalf("oidctest: Start: the issuer is running")
	}
	ln, err := net.Listen("tcp", i.addr)
	if err != nil {
		tb.Fatalf("oidctest: listen again on %s: %v", i.addr, err)
	}
	i.serve(ln)
}

// Close stops the issuer for good. It is safe to call more than once.
func (i *Issuer) Close() { _ = i.stop() }

// DiscoveryRequests returns how many times the discovery document was requested, including
// requests answered with a Fail status.
func (i *Issuer) DiscoveryRequests() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.discovery
}

// JWKSRequests returns how many times the key set was requested, including requests answered with
// a Fail status.
func (i *Issuer) JWKSRequests() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwks
}

func (i *Issuer) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.handleDiscovery)
	mux.HandleFunc("GET "+JWKSPath, i.handleJWKS)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	i.mu.Lock()
	i.srv, i.served = srv, served
	i.mu.Unlock()
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // returns ErrServerClosed once stopped
	}()
}

func (i *Issuer) stop() error {
	i.mu.Lock()
	srv, served := i.srv, i.served
	i.srv, i.served = nil, nil
	i.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-served
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (i *Issuer) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	i.discovery++
	status := i.status
	i.mu.Unlock()
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	writeJSON(w, map[string]any{
		"issuer":                                i.URL(),
		"authorization_endpoint":                i.URL() + "/authorize",
		"token_endpoint":                        i.URL() + "/token",
		"jwks_uri":                              i.URL() + JWKSPath,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (i *Issuer) handleJWKS(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	i.jwks++
	status := i.status
	var set jose.JSONWebKeySet
	for _, k := range i.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.kid, Algorithm: "RS256", Use: "sig"})
	}
	i.mu.Unlock()
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	writeJSON(w, set)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// keyCache holds the RSA keys of the test binary. Generating a 2048-bit key takes up to a second
// under the race detector and every test starts an issuer, so issuers share them: the n-th key of
// every issuer is the same key, and the foreign key is published by none.
var keyCache struct {
	mu        sync.Mutex
	published []*rsa.PrivateKey
	foreign   *rsa.PrivateKey
}

func publishedKey(tb testing.TB, n int) *rsa.PrivateKey {
	tb.Helper()
	keyCache.mu.Lock()
	defer keyCache.mu.Unlock()
	for len(keyCache.published) <= n {
		keyCache.published = append(keyCache.published, newRSAKey(tb))
	}
	return keyCache.published[n]
}

func foreignKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	keyCache.mu.Lock()
	defer keyCache.mu.Unlock()
	if keyCache.foreign == nil {
		keyCache.foreign = newRSAKey(tb)
	}
	return keyCache.foreign
}

func newRSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatalf("oidctest: generate key: %v", err)
	}
	return key
}

func sign(tb testing.TB, kid string, key *rsa.PrivateKey, claims map[string]any) string {
	tb.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		tb.Fatalf("oidctest: signer: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatalf("oidctest: claims: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatalf("oidctest: sign: %v", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatalf("oidctest: serialize: %v", err)
	}
	return token
}
