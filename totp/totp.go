// Package totp is fluxauth's RFC 6238 authenticator: SHA-1, 6 digits, 30-second steps, one step
// either side of now accepted. It computes the time step itself so that callers can remember the
// last step a factor accepted and refuse it, and any earlier one, afterwards: each code works once.
// The code arithmetic is github.com/pquerna/otp's.
package totp

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	otptotp "github.com/pquerna/otp/totp"
)

// Period is the length of a time step.
const Period = 30 * time.Second

// Digits is the length of a code.
const Digits = 6

// Skew is how many steps either side of now a code may be from.
const Skew = 1

// secretSize is the secret's length in bytes: 160 bits, as RFC 4226 recommends for HMAC-SHA-1.
const secretSize = 20

// qrSize is the side of the QR image in pixels.
const qrSize = 256

// Key is a new factor's secret and how an authenticator app is told about it.
type Key struct {
	// Secret is the base32 secret (no padding), what an authenticator app is given by hand.
	Secret string
	// URI is the otpauth:// URI the QR code holds.
	URI string
	// QR is a PNG data URI of the QR code of URI.
	QR string
}

// NewKey makes a new random secret for account (the user's email address) under issuer.
func NewKey(issuer, account string) (*Key, error) {
	k, err := otptotp.Generate(otptotp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      uint(Period / time.Second),
		SecretSize:  secretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fmt.Errorf("totp: generate: %w", err)
	}
	img, err := k.Image(qrSize, qrSize)
	if err != nil {
		return nil, fmt.Errorf("totp: qr image: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("totp: qr png: %w", err)
	}
	return &Key{
		Secret: k.Secret(),
		URI:    k.URL(),
		QR:     "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
	}, nil
}

// Step is the time step t falls in.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Code is the code of secret for time step step.
func Code(secret string, step int64) (string, error) {
	if step < 0 {
		return "", errors.New("totp: negative step")
	}
	code, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{
		Digits:    otp.DigitsSix,
		Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", fmt.Errorf("totp: %w", err)
	}
	return code, nil
}

// Match returns the step within Skew of now whose code is code and that is after after (the last
// step the factor accepted), the latest such; ok is false when there is none. A malformed code
// never matches. Every candidate is compared, in constant time.
func Match(secret, code string, now time.Time, after int64) (step int64, ok bool, err error) {
	if len(code) != Digits {
		return 0, false, nil
	}
	for _, c := range []byte(code) {
		if c < '0' || c > '9' {
			return 0, false, nil
		}
	}
	cur := Step(now)
	for s := cur - Skew; s <= cur+Skew; s++ {
		want, err := Code(secret, s)
		if err != nil {
			return 0, false, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && s > after {
			step, ok = s, true
		}
	}
	return step, ok, nil
}
