package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/app"
	"github.com/fluxstudio/fluxauth/token"
)

func cmdKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return errors.New("usage: fluxauth keys rotate [--signing-keys PATH]")
	}
	cfg, _, err := parseConfig("keys rotate", args[1:], getenv, stderr, nil)
	if err != nil {
		return err
	}
	if cfg.JWTAlg == "HS256" {
		return errors.New("keys rotate: FLUXAUTH_JWT_ALG=HS256 signs with FLUXAUTH_JWT_SECRET; there is no key file to rotate")
	}
	if cfg.SigningKeys == "" {
		return errors.New("FLUXAUTH_SIGNING_KEYS: name the key file to rotate")
	}
	// Retired keys stay as long as the issuer serve builds from this configuration can still accept a
	// token they signed: building it here keeps that rule in one place (Issuer.KeyRetention).
	clock := fluxauth.SystemClock{}
	issuer, _, err := app.LoadIssuer(cfg, clock, rand.Reader)
	if err != nil {
		return err
	}
	ks, err := token.RotateKeyFile(cfg.SigningKeys, clock, rand.Reader, issuer.KeyRetention())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new signing key %s is current; keys in use: %v\n", ks.CurrentKID(), ks.KIDs())
	fmt.Fprintf(stdout, "new encryption key %s is current; encryption keys (all kept): %v\n",
		ks.EncryptionKIDs()[0], ks.EncryptionKIDs())
	return nil
}
