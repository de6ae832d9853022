package dashboard_test

import (
	"os/exec"
	"testing"

	"github.com/fluxstudio/fluxauth/internal/testenv"
)

// TestStreamParser runs the page's unit tests of its Server-Sent Events parser with Node.js's test
// runner (the module has no DOM dependency, so node loads it as the browser does).
func TestStreamParser(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if testenv.Required() {
			t.Fatal("node is not on PATH but FLUXAUTH_TEST_REQUIRE_SERVICES=1: the page's parser tests must run")
		}
		t.Skip("the page's parser tests skipped: node is not on PATH (install Node.js 20+)")
	}
	out, err := exec.Command(node, "--test", "testdata/stream_test.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
}
