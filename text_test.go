package fluxauth_test

import (
	"testing"

	"github.com/fluxstudio/fluxauth"
)

func TestUnsafeRuneRefusesControlBidiAndInvisibleFormatCharacters(t *testing.T) {
	unsafe := []rune{0x00, 0x07, 0x1B, 0x7F, 0x85, 0x061C, 0x200B, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0xFEFF}
	for _, r := range unsafe {
		if !fluxauth.UnsafeRune(r) {
			t.Errorf("U+%04X is allowed, want refused", r)
		}
	}
	// Around each range, and the joiners names and emoji need.
	safe := []rune{'a', ' ', 'é', '👩', 0x061B, 0x061D, 0x200A, 0x200C, 0x200D, 0x2010, 0x2029, 0x202F, 0x2065, 0x206A, 0xFEFE, 0xFF01}
	for _, r := range safe {
		if fluxauth.UnsafeRune(r) {
			t.Errorf("U+%04X is refused, want allowed", r)
		}
	}
}
