package testenv

import (
	"os/exec"
	"testing"
)

// Chromium returns the path of Debian's chromium for the browser tests, skipping tb when it is not
// installed, or failing it when FLUXAUTH_TEST_REQUIRE_SERVICES=1 (.ci/run installs it with apt).
func Chromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if Required() {
		tb.Fatal("chromium is not installed but FLUXAUTH_TEST_REQUIRE_SERVICES=1: browser tests must run (apt-get install -y chromium)")
	}
	tb.Skip("browser tests skipped: chromium is not installed (apt-get install -y chromium)")
	return ""
}
