package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// User is one simulated user. Its tokens are unexported so that no formatting of a User can print
// them.
type User struct {
	Email string
	// password is shared by every user of a run; it is random per run.
	password string
	// access is read by /me workers while a refresh of the same user may replace it.
	access atomic.Pointer[string]
	// refresh is owned by whoever holds the user in a Pool (see Pool), so it needs no lock.
	refresh string
	// retired is set when the server ended the user's session; the user is never scheduled again.
	retired bool
}

func (u *User) accessToken() string {
	if p := u.access.Load(); p != nil {
		return *p
	}
	return ""
}

// authResponse is the part of fluxauth's AuthResponse the harness needs.
type authResponse struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

// errorBody is fluxauth's error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// SetupConfig says how many users to create and how.
type SetupConfig struct {
	Target      string // base URL, already checked by CheckTarget
	Users       int
	Concurrency int           // signups in flight at once
	Timeout     time.Duration // for the whole setup phase
	Client      *http.Client
}

// RunID returns a short random identifier that keeps this run's emails apart from earlier runs'
// against the same database.
func RunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newPassword returns a random password for the run's users: long enough for the policy and not
// on any common-password list.
func newPassword() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "fluxload-" + hex.EncodeToString(b[:])
}

// Setup signs cfg.Users users up through the API, cfg.Concurrency at a time, and keeps their tokens.
// The first failure stops it: against a server with its default rate limits the signups are refused
// after five, and going on would only hide that.
func Setup(ctx context.Context, cfg SetupConfig, runID string) ([]*User, error) {
	if cfg.Users < 1 {
		return nil, errors.New("setup: need at least one user")
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	pw := newPassword()
	users := make([]*User, cfg.Users)
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(cfg.Concurrency, cfg.Users) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				u := &User{Email: fmt.Sprintf("fluxload-%s-%d@example.com", runID, i), password: pw}
				if err := signup(ctx, cfg.Client, cfg.Target, u); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("setup: signing up user %d: %w", i, err); cancel() })
					continue
				}
				users[i] = u
			}
		}()
	}
feed:
	for i := range cfg.Users {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	return users, nil
}

func signup(ctx context.Context, c *http.Client, target string, u *User) error {
	body, _ := json.Marshal(map[string]string{"email": u.Email, "password": u.password, "name": "Load Test"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/api/auth/signup", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d %s%s", res.StatusCode, errorCode(data), rateLimitHint(res.StatusCode))
	}
	var ar authResponse
	if err := json.Unmarshal(data, &ar); err != nil || ar.AccessToken == "" || ar.RefreshToken == "" {
		return errors.New("signup answered 201 without tokens")
	}
	u.access.Store(&ar.AccessToken)
	u.refresh = ar.RefreshToken
	return nil
}

func rateLimitHint(status int) string {
	if status == http.StatusTooManyRequests {
		return " (start the server with its rate limits relaxed: see docs/BENCHMARKS.md)"
	}
	return ""
}

// errorCode returns the code of a fluxauth error body, or a description of a body that is not one;
// never the body itself, which might carry something secret.
func errorCode(body []byte) string {
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
		return fmt.Sprintf("(non-error body, %d bytes)", len(body))
	}
	return eb.Error.Code
}
