// Package oidc owns the verification of Google and Apple ID tokens that the apps obtain from the
// provider SDKs and hand to fluxauth: lazy discovery of each provider, its cached signing keys
// (fetched again for a kid they lack, at most once per 30 seconds whatever the traffic), the
// checks of signature, issuer, audience, expiry and nonce, and the split between a token that is
// invalid (invalid_id_token, with a reason for the audit log) and a provider that cannot be reached
// (provider_unavailable).
package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/fluxstudio/fluxauth"
)

// Provider names. The name selects the provider's documented quirks (see NewVerifier); any other
// name gets plain OpenID Connect rules.
const (
	Google = "google"
	Apple  = "apple"
)

// Reasons a token is refused, as Reason reports them. They go into failed_login event metadata, so
// they are stable.
const (
	ReasonMalformed = "malformed" // not a compact JWS, or unreadable claims
	ReasonAlgorithm = "algorithm" // alg none, HS256 or anything the provider does not sign with
	ReasonSignature = "signature" // no published key verifies it
	ReasonIssuer    = "issuer"    // iss is not the provider
	ReasonAudience  = "audience"  // aud names none of our client ids
	// ReasonAuthorizedParty: aud has several values and azp is missing, not one of our client ids,
	// or not among them (OpenID Connect Core 3.1.3.7).
	ReasonAuthorizedParty = "authorized_party"
	ReasonExpired         = "expired"       // exp missing or passed
	ReasonNotYetValid     = "not_yet_valid" // nbf in the future beyond the allowed skew
	ReasonSubject         = "subject"       // no sub: nothing to link an identity to
	ReasonNonce           = "nonce"         // the nonce claim and the request's nonce are not both absent or equal
	ReasonUnavailable     = "provider_unavailable"
	ReasonDisabled        = "provider_disabled"
)

const (
	// fetchTimeout bounds each discovery and JWKS request, so a hung provider costs a login at most
	// this long instead of the client's whole patience.
	fetchTimeout = 5 * time.Second
	// nbfLeeway tolerates clocks that run behind the provider's, as go-oidc does.
	nbfLeeway = 5 * time.Minute
)

// asymmetricAlgs are the algorithms a provider may sign ID tokens with. Symmetric ones (HS256, keyed
// with something the client could know) and none are never accepted, whatever discovery says.
var asymmetricAlgs = []string{
	gooidc.RS256, gooidc.RS384, gooidc.RS512,
	gooidc.ES256, gooidc.ES384, gooidc.ES512,
	gooidc.PS256, gooidc.PS384, gooidc.PS512,
	gooidc.EdDSA,
}

// Config is what a Verifier needs; cmd reads it from the environment.
type Config struct {
	// Issuer is the provider's issuer URL, where its discovery document lives
	// (https://accounts.google.com, https://appleid.apple.com; a loopback issuer in tests).
	Issuer string
	// ClientIDs are the accepted audiences: web, iOS and Android apps have different ones. None
	// disables the provider.
	ClientIDs []string
	// HTTPClient fetches discovery and keys. Nil means a client with a short timeout; a client
	// without a timeout gets one.
	HTTPClient *http.Client
	// Clock judges exp and nbf. Nil means the system clock.
	Clock fluxauth.Clock
}

// Claims is what fluxauth takes from a verified ID token.
type Claims struct {
	Subject       string
	Email         string
	EmailVerified bool
	// HostedDomain is Google's hd claim: the Google Workspace domain of the account, "" for a
	// consumer account (and for Apple, which has no such claim).
	HostedDomain string
	Name         string
	// Expiry is the token's exp: until then it verifies, so until then its use must be remembered.
	Expiry time.Time
	// ReplayKey names the token for accepting it once: the hex SHA-256 of its jti or, when it has
	// none, of its header and payload, which are what the provider signed. Neither changes when a
	// third party re-encodes the token or swaps an ECDSA signature for its twin, as a hash of the
	// whole token would.
	ReplayKey string
}

// Verifier verifies the ID tokens of one provider. It is safe for concurrent use; create one per
// provider and keep it, since it caches the provider's discovery document and keys.
type Verifier struct {
	name      string
	issuer    string
	clientIDs []string
	client    *http.Client
	clock     fluxauth.Clock

	mu      sync.Mutex
	ready   *discovered // set once discovery succeeded; never refetched (keys are, by kid)
	pending *attempt    // the discovery in flight, shared by every caller waiting for it
}

// discovered is what discovery yields: go-oidc's verifier bound to the provider's key set, and the
// algorithms the provider signs with.
type discovered struct {
	verifier *gooidc.IDTokenVerifier
	algs     []string
}

type attempt struct {
	done chan struct{}
	d    *discovered
	err  error
}

// NewVerifier returns the verifier of provider name. It does not contact the provider: discovery
// happens at the first Verify, and is retried by later calls while it fails, so fluxauth starts
// while the provider is unreachable.
//
// Two provider quirks follow the name. Google's tokens may carry the issuer without its scheme
// ("accounts.google.com"), which Google documents as valid. Apple's nonce claim holds the hex
// SHA-256 of the raw nonce the app sends, so only that hash matches; other providers must echo the
// nonce as given.
func NewVerifier(name string, cfg Config) *Verifier {
	client := &http.Client{Timeout: fetchTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		if c.Timeout == 0 {
			c.Timeout = fetchTimeout
		}
		client = &c
	}
	clock := cfg.Clock
	if clock == nil {
		clock = fluxauth.SystemClock{}
	}
	var ids []string
	for _, id := range cfg.ClientIDs {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	return &Verifier{
		name:      name,
		issuer:    cfg.Issuer,
		clientIDs: ids,
		client:    client,
		clock:     clock,
	}
}

// Enabled reports whether the provider has client ids; a disabled provider refuses every token
// with provider_disabled and never contacts the provider.
func (v *Verifier) Enabled() bool { return len(v.clientIDs) > 0 }

// Verify checks rawIDToken and returns its claims. A token with a nonce claim needs the nonce the
// app asked for it with (the claim holds its hash, for Apple), and a nonce given needs a token
// carrying it: a token captured from a sign-in that used a nonce is useless without the nonce.
// Errors are *fluxauth.Error: invalid_id_token for a token that fails a check,
// provider_unavailable when discovery or the key fetch failed, provider_disabled when Enabled is
// false; Reason tells which check failed. Verify does not remember tokens: accepting each once is
// the caller's job, with Claims.ReplayKey.
func (v *Verifier) Verify(ctx context.Context, rawIDToken, nonce string) (*Claims, error) {
	if !v.Enabled() {
		return nil, &fluxauth.Error{
			Code:    fluxauth.EProviderDisabled,
			Message: v.display() + " sign-in is not enabled.",
			Err:     &reasonError{reason: ReasonDisabled, err: errors.New("no client ids configured")},
		}
	}
	d, err := v.discover(ctx)
	if err != nil {
		return nil, v.unavailable(fmt.Errorf("discovery of %s: %w", v.issuer, err))
	}

	// Checked before go-oidc so a forged alg gets its own reason, and costs no key fetch.
	if err := checkCompact(rawIDToken, d.algs); err != nil {
		return nil, err
	}

	// go-oidc flattens key-set errors into text, so the key set records per call whether it failed
	// to fetch keys or to verify with them.
	call := &keyCall{}
	tok, err := d.verifier.Verify(context.WithValue(ctx, keyCallKey{}, call), rawIDToken)
	switch {
	case call.fetchErr != nil:
		return nil, v.unavailable(fmt.Errorf("fetching keys: %w", call.fetchErr))
	case call.verifyErr != nil:
		return nil, invalid(ReasonSignature, call.verifyErr)
	case err != nil:
		return nil, invalid(ReasonMalformed, err)
	}

	var raw struct {
		ID              string     `json:"jti"`
		NotBefore       *float64   `json:"nbf"`
		Email           string     `json:"email"`
		EmailVerified   stringBool `json:"email_verified"`
		HostedDomain    string     `json:"hd"`
		Name            string     `json:"name"`
		AuthorizedParty string     `json:"azp"`
	}
	if err := tok.Claims(&raw); err != nil {
		return nil, invalid(ReasonMalformed, err)
	}
	if !v.issuerOK(tok.Issuer) {
		return nil, invalid(ReasonIssuer, fmt.Errorf("issuer %q, want %q", tok.Issuer, v.issuer))
	}
	if !slices.ContainsFunc(tok.Audience, func(aud string) bool { return slices.Contains(v.clientIDs, aud) }) {
		return nil, invalid(ReasonAudience, fmt.Errorf("audience %q is none of the configured client ids", tok.Audience))
	}
	if err := v.checkAuthorizedParty(tok.Audience, raw.AuthorizedParty); err != nil {
		return nil, err
	}
	now := v.clock.Now()
	if !now.Before(tok.Expiry) {
		return nil, invalid(ReasonExpired, fmt.Errorf("expired at %s, now %s", tok.Expiry.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	if raw.NotBefore != nil {
		nbf := time.Unix(int64(*raw.NotBefore), 0)
		if now.Add(nbfLeeway).Before(nbf) {
			return nil, invalid(ReasonNotYetValid, fmt.Errorf("not before %s, now %s", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
		}
	}
	if tok.Subject == "" {
		return nil, invalid(ReasonSubject, errors.New("no sub claim"))
	}
	if nonce != "" || tok.Nonce != "" {
		if err := v.checkNonce(tok.Nonce, nonce); err != nil {
			return nil, err
		}
	}
	return &Claims{
		Subject:       tok.Subject,
		Email:         raw.Email,
		EmailVerified: bool(raw.EmailVerified),
		HostedDomain:  raw.HostedDomain,
		Name:          raw.Name,
		Expiry:        tok.Expiry,
		ReplayKey:     replayKey(rawIDToken, raw.ID),
	}, nil
}

// replayKey computes Claims.ReplayKey of a token checkCompact accepted.
func replayKey(rawIDToken, jti string) string {
	h := sha256.New()
	if jti != "" {
		h.Write([]byte("jti\x00"))
		h.Write([]byte(jti))
	} else {
		// checkCompact made the encoding canonical, so the encoded header and payload stand for
		// the decoded ones; the signature is left out, as the only part a third party can vary.
		h.Write([]byte("jws\x00"))
		h.Write([]byte(rawIDToken[:strings.LastIndexByte(rawIDToken, '.')]))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// discover returns the provider's discovery, fetching it if no earlier call succeeded. Concurrent
// callers share one fetch, so an outage costs one request at a time, not one per login.
func (v *Verifier) discover(ctx context.Context) (*discovered, error) {
	v.mu.Lock()
	if v.ready != nil {
		d := v.ready
		v.mu.Unlock()
		return d, nil
	}
	a := v.pending
	if a == nil {
		a = &attempt{done: make(chan struct{})}
		v.pending = a
		// Detached from ctx: the first caller giving up must not fail the others sharing the fetch.
		// The client's timeout bounds it.
		go v.runDiscovery(a)
	}
	v.mu.Unlock()
	select {
	case <-a.done:
		return a.d, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (v *Verifier) runDiscovery(a *attempt) {
	d, err := v.fetchDiscovery()
	v.mu.Lock()
	if err == nil {
		v.ready = d
	}
	v.pending = nil
	v.mu.Unlock()
	a.d, a.err = d, err
	close(a.done)
}

func (v *Verifier) fetchDiscovery() (*discovered, error) {
	// go-oidc takes its HTTP client from the context.
	httpCtx := gooidc.ClientContext(context.Background(), v.client)
	ctx, cancel := context.WithTimeout(httpCtx, fetchTimeout)
	defer cancel()
	// NewProvider also checks that the document names the configured issuer.
	p, err := gooidc.NewProvider(ctx, v.issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, err
	}
	if meta.JWKSURI == "" {
		return nil, errors.New("discovery document has no jwks_uri")
	}
	var algs []string
	for _, a := range meta.Algs {
		if slices.Contains(asymmetricAlgs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{gooidc.RS256} // the one algorithm OpenID Connect requires
	}
	keys := &keySet{url: meta.JWKSURI, client: v.client, clock: v.clock}
	for _, a := range algs {
		keys.algs = append(keys.algs, jose.SignatureAlgorithm(a))
	}
	return &discovered{
		verifier: gooidc.NewVerifier(v.issuer, keys, &gooidc.Config{
			SupportedSigningAlgs: algs,
			// go-oidc compares aud with one client id, and accepts the scheme-less issuer only for
			// the literal Google URL; Verify checks both itself. Expiry is checked there too, on
			// the injected clock, so that nbf gets its own reason.
			SkipClientIDCheck: true,
			SkipIssuerCheck:   true,
			SkipExpiryCheck:   true,
		}),
		algs: algs,
	}, nil
}

func (v *Verifier) issuerOK(iss string) bool {
	if iss == v.issuer {
		return true
	}
	if v.name == Google {
		if _, bare, ok := strings.Cut(v.issuer, "://"); ok && iss == bare {
			return true
		}
	}
	return false
}

// checkAuthorizedParty applies OpenID Connect Core 3.1.3.7 to a token for several audiences: one
// issued to another party that merely lists us among its audiences is not a sign-in to us, so azp
// must name the party it was issued to, which must be one of our client ids and among the
// audiences. A token with one audience needs no azp (Google's Android tokens carry the Android
// client's id there, and aud is already ours).
func (v *Verifier) checkAuthorizedParty(aud []string, azp string) error {
	if len(aud) < 2 {
		return nil
	}
	switch {
	case azp == "":
		return invalid(ReasonAuthorizedParty, fmt.Errorf("audience %q has several values and no azp", aud))
	case !slices.Contains(v.clientIDs, azp):
		return invalid(ReasonAuthorizedParty, fmt.Errorf("azp %q is none of the configured client ids", azp))
	case !slices.Contains(aud, azp):
		return invalid(ReasonAuthorizedParty, fmt.Errorf("azp %q is not among the audience %q", azp, aud))
	}
	return nil
}

func (v *Verifier) checkNonce(claim, nonce string) error {
	if claim == "" {
		return invalid(ReasonNonce, errors.New("nonce given but the token has no nonce claim"))
	}
	if nonce == "" {
		return invalid(ReasonNonce, errors.New("the token has a nonce claim but no nonce was given"))
	}
	want := nonce
	if v.name == Apple {
		sum := sha256.Sum256([]byte(nonce))
		want = hex.EncodeToString(sum[:])
	}
	if subtle.ConstantTimeCompare([]byte(claim), []byte(want)) != 1 {
		return invalid(ReasonNonce, errors.New("nonce does not match"))
	}
	return nil
}

func (v *Verifier) unavailable(cause error) error {
	return &fluxauth.Error{
		Code:    fluxauth.EProviderUnavailable,
		Message: v.display() + " sign-in is temporarily unavailable. Try again later.",
		Err:     &reasonError{reason: ReasonUnavailable, err: cause},
	}
}

func (v *Verifier) display() string {
	switch v.name {
	case Google:
		return "Google"
	case Apple:
		return "Apple"
	}
	return v.name
}

// checkCompact refuses a token that is not a JWS in canonical compact form (three segments of
// unpadded base64url whose unused bits are zero) or whose header names an algorithm the provider
// does not sign with. go-jose would accept whitespace and non-canonical base64 too: refusing them
// makes the encoded token the only encoding of what it carries, so replayKey can hash it.
func checkCompact(raw string, algs []string) error {
	segments := strings.SplitN(raw, ".", 4)
	if len(segments) != 3 {
		return invalid(ReasonMalformed, errors.New("not a compact JWS"))
	}
	var header []byte
	for i, seg := range segments {
		b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
		if err != nil || strings.ContainsAny(seg, "\r\n") {
			return invalid(ReasonMalformed, fmt.Errorf("segment %d is not canonical base64url", i+1))
		}
		if i == 0 {
			header = b
		}
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		return invalid(ReasonMalformed, fmt.Errorf("header: %w", err))
	}
	if !slices.Contains(algs, h.Alg) {
		return invalid(ReasonAlgorithm, fmt.Errorf("alg %q is not one of %q", h.Alg, algs))
	}
	return nil
}

func invalid(reason string, cause error) error {
	return &fluxauth.Error{
		Code:    fluxauth.EInvalidIDToken,
		Message: "The ID token is invalid.",
		Err:     &reasonError{reason: reason, err: cause},
	}
}

// reasonError carries the reason a token was refused, for Reason, under the safe fluxauth.Error.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// Reason returns why Verify refused a token (one of the Reason constants), or "" when err did not
// come from Verify.
func Reason(err error) string {
	var r *reasonError
	if errors.As(err, &r) {
		return r.reason
	}
	return ""
}

// stringBool reads email_verified, which Google sends as a JSON bool and Apple as a bool or the
// string "true"/"false". Anything else is false: an unverified email must never link accounts.
type stringBool bool

func (b *stringBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case `true`, `"true"`:
		*b = true
	default:
		*b = false
	}
	return nil
}
