package app

import (
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth/internal/config"
)

// The SMTP password, the Sentry DSN's key and the legacy server's JWT secret are filtered by value,
// wherever they appear: in text no other rule of the scrubber recognises.
func TestScrubberKnowsTheSMTPPasswordTheSentryKeyAndTheLegacySecret(t *testing.T) {
	cfg := config.Default()
	cfg.SMTP.Password = "mailer-hunter2"
	cfg.SentryDSN = "https://sentrykey0123@o1.ingest.sentry.io/42"
	cfg.Legacy.Secret = "fluxstudio-legacy-jwt-key"
	scrub := newScrubber(cfg)
	for _, secret := range []string{cfg.SMTP.Password, "sentrykey0123", cfg.Legacy.Secret} {
		got := scrub.Text("upstream said " + secret + " was refused")
		if strings.Contains(got, secret) || got != "upstream said [Filtered] was refused" {
			t.Errorf("%q kept: %q", secret, got)
		}
	}
}
