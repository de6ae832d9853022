package config

import (
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/mail"
)

func TestMailIsOffByDefaultWithTheLinkLifetimesOfTheIssue(t *testing.T) {
	c := Default()
	if c.SMTP.Enabled() || c.MailFrom != "" || c.Links.ResetURL != "" || c.Account.RequireVerifiedEmail {
		t.Fatalf("mail settings by default: %v from %q reset %q require %t", c.SMTP, c.MailFrom, c.Links.ResetURL, c.Account.RequireVerifiedEmail)
	}
	if c.Links.ResetTTL != 30*time.Minute || c.Links.VerifyTTL != 48*time.Hour {
		t.Fatalf("TTLs %s, %s", c.Links.ResetTTL, c.Links.VerifyTTL)
	}
}

func TestLogMailFillsInLocalLinksAndWarns(t *testing.T) {
	c, err := Load(given("FLUXAUTH_SMTP_URL", "log:"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Mode != mail.ModeLog || !strings.Contains(c.Links.ResetURL, "localhost") || !strings.Contains(c.Links.VerifyURL, "localhost") ||
		!strings.Contains(c.MailFrom, "localhost") {
		t.Fatalf("log: gives %v, from %q, links %q %q", c.SMTP, c.MailFrom, c.Links.ResetURL, c.Links.VerifyURL)
	}
	for _, l := range []string{c.Links.ResetURL, c.Links.VerifyURL} {
		if err := mail.ValidLinkTemplate(l); err != nil {
			t.Fatalf("the local default %q is not a valid template: %v", l, err)
		}
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "log:") {
		t.Fatalf("warnings %q", c.Warnings)
	}
	c, err = Load(given("FLUXAUTH_SMTP_URL", "log:", "FLUXAUTH_RESET_URL", "https://app.example/r?t={token}"))
	if err != nil || c.Links.ResetURL != "https://app.example/r?t={token}" {
		t.Fatalf("a given link was replaced: %q, %v", c.Links.ResetURL, err)
	}
}

func TestRealSMTPNeedsFromAndBothLinksAndNeverPrintsItsPassword(t *testing.T) {
	_, err := Load(given("FLUXAUTH_SMTP_URL", "smtps://fluxauth:hunter2@mail.example.com"))
	if err == nil {
		t.Fatal("SMTP without a From and links loaded")
	}
	for _, want := range []string{"FLUXAUTH_MAIL_FROM", "FLUXAUTH_RESET_URL", "FLUXAUTH_VERIFY_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	_, err = Load(given("FLUXAUTH_SMTP_URL", "smtp://fluxauth:hunter2@mail.example.com?tls=none"))
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("tls=none off loopback: %v", err)
	}
	c, err := Load(given("FLUXAUTH_SMTP_URL", "smtp://fluxauth:hunter2@mail.example.com", "FLUXAUTH_MAIL_FROM", "FluxStudio <no-reply@fluxstudio.example>",
		"FLUXAUTH_RESET_URL", "https://app.example/reset?token={token}", "FLUXAUTH_VERIFY_URL", "https://app.example/verify?token={token}"))
	if err != nil || !c.SMTP.Real() || c.SMTP.Password != "hunter2" {
		t.Fatalf("a complete SMTP configuration: %v, %v", c, err)
	}
}

func TestMailSettingsAreValidated(t *testing.T) {
	for env, v := range map[string]string{
		"FLUXAUTH_RESET_URL":              "https://app.example/reset",
		"FLUXAUTH_VERIFY_URL":             "javascript:alert({token})",
		"FLUXAUTH_MAIL_FROM":              "not an address",
		"FLUXAUTH_RESET_TTL":              "1m",
		"FLUXAUTH_VERIFY_TTL":             "10000h",
		"FLUXAUTH_REQUIRE_VERIFIED_EMAIL": "sometimes",
		"FLUXAUTH_RATE_FORGOT_EMAIL":      "often",
		"FLUXAUTH_SMTP_URL":               "mail.example.com",
	} {
		if _, err := Load(given(env, v)); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%q: %v, want an error naming it", env, v, err)
		}
	}
	if _, err := Load(given("FLUXAUTH_REQUIRE_VERIFIED_EMAIL", "true")); err == nil || !strings.Contains(err.Error(), "FLUXAUTH_SMTP_URL") {
		t.Fatalf("requiring verified addresses without mail: %v", err)
	}
	c, err := Load(given("FLUXAUTH_REQUIRE_VERIFIED_EMAIL", "true", "FLUXAUTH_SMTP_URL", "log:"))
	if err != nil || !c.Account.RequireVerifiedEmail {
		t.Fatalf("requiring verified addresses with mail: %v", err)
	}
}
