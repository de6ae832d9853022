package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fluxstudio/fluxauth"
)

const (
	// refetchInterval is the least time between two fetches of a provider's keys after the first.
	// Any caller can name a kid the cached keys lack, and an unknown kid is the only reason to fetch,
	// so without this bound every forged token would cost a request to the provider and a flood of
	// them would get fluxauth throttled there. Providers publish a key before they sign with it, so
	// a legitimate kid is almost never missing from keys fetched less than this long ago.
	refetchInterval = 30 * time.Second
	// maxKeySetBytes bounds what is read of a key set; Google's and Apple's are a few KiB.
	maxKeySetBytes = 1 << 20
)

// keySet is a provider's published signing keys, cached and fetched again only when a token names
// a kid they lack, at most once per refetchInterval. It replaces go-oidc's RemoteKeySet, which
// fetches again whenever a signature fails to verify, including under a kid it already has (a
// forgery, which new keys cannot fix).
type keySet struct {
	url    string
	client *http.Client
	clock  fluxauth.Clock
	algs   []jose.SignatureAlgorithm

	mu          sync.Mutex
	keys        []jose.JSONWebKey
	gen         uint64    // fetches completed; tells a caller whether the keys it read are still the newest
	fetchErr    error     // the last fetch's error; nil after a success
	fetched     bool      // the first fetch has started: any later one is a refetch
	lastRefetch time.Time // when the last refetch started; zero before the first
	inflight    chan struct{}
}

type keyCallKey struct{}

// keyCall records, for one Verify, whether the keys could not be fetched (the provider is
// unreachable) or did not verify the token (it is forged): go-oidc flattens both into text.
type keyCall struct{ fetchErr, verifyErr error }

// VerifySignature implements go-oidc's KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	call, ok := ctx.Value(keyCallKey{}).(*keyCall)
	if !ok {
		call = &keyCall{}
	}
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("not exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID

	k.mu.Lock()
	keys, gen := k.keys, k.gen
	k.mu.Unlock()
	payload, known := verifyWith(jws, keys, kid)
	if payload != nil {
		return payload, nil
	}
	if known {
		// The provider published this kid and its key does not verify the token: a forgery, which
		// no fetch can change.
		call.verifyErr = errors.New("the signature does not verify under the published key of its kid")
		return nil, call.verifyErr
	}
	keys, err = k.refresh(ctx, gen)
	if payload, _ := verifyWith(jws, keys, kid); payload != nil {
		return payload, nil
	}
	if err != nil {
		call.fetchErr = err
		return nil, err
	}
	call.verifyErr = errors.New("no published key has the token's kid")
	return nil, call.verifyErr
}

// verifyWith returns the payload if a key of kid (any key, when kid is empty) verifies jws, and
// whether a key of kid is among keys.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) (payload []byte, known bool) {
	for i := range keys {
		if kid != "" {
			if keys[i].KeyID != kid {
				continue
			}
			known = true
		}
		if p, err := jws.Verify(&keys[i]); err == nil {
			return p, true
		}
	}
	return nil, known
}

// refresh returns keys newer than generation gen: those of a fetch that completed since, of the
// one in flight, or of a new one if refetchInterval allows it. When it does not, it returns the
// keys as they are, with the last fetch's error if that failed. Concurrent callers share one fetch.
func (k *keySet) refresh(ctx context.Context, gen uint64) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	done := k.inflight
	switch {
	case k.gen != gen || done != nil:
	case k.fetched && k.throttled():
		keys, err := k.keys, k.fetchErr
		k.mu.Unlock()
		return keys, err
	default:
		if k.fetched {
			k.lastRefetch = k.clock.Now()
		}
		k.fetched = true
		done = make(chan struct{})
		k.inflight = done
		// Detached from ctx: the first caller giving up must not fail the others sharing the
		// fetch. The client's timeout bounds it.
		go k.fetch(done)
	}
	k.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.fetchErr
}

// throttled reports whether a refetch started less than refetchInterval ago. A clock that stepped
// back does not hold refetches off until it catches up. Called with mu held.
func (k *keySet) throttled() bool {
	if k.lastRefetch.IsZero() {
		return false
	}
	since := k.clock.Now().Sub(k.lastRefetch)
	return since >= 0 && since < refetchInterval
}

func (k *keySet) fetch(done chan struct{}) {
	keys, err := k.download()
	k.mu.Lock()
	if err == nil {
		k.keys = keys
	}
	k.fetchErr = err
	k.gen++
	k.inflight = nil
	k.mu.Unlock()
	close(done)
}

func (k *keySet) download() ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	// Past any cache between us and the provider: a refetch is for keys we have not seen.
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", k.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", k.url, err)
	}
	if len(body) > maxKeySetBytes {
		return nil, fmt.Errorf("GET %s: key set larger than %d bytes", k.url, maxKeySetBytes)
	}
	return parseKeySet(body)
}

// parseKeySet reads a JWKS. Keys fluxauth cannot use (an unknown type or curve, an encryption
// key) are skipped rather than failing the set, so that a provider adding one does
// not stop sign-in with the others.
func parseKeySet(body []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decoding the key set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := json.Unmarshal(raw, &key); err != nil || !key.Valid() || key.Use == "enc" {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("the key set has no usable signing key")
	}
	return keys, nil
}
