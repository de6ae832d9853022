package fluxauth

import "unicode"

// UnsafeRune reports whether r may not stand in client text that fluxauth stores and shows (names,
// device names, User-Agents): a control character, or a bidirectional or invisible format
// character that can make text read otherwise than it is written (U+061C, U+200B, U+200E–U+200F,
// U+202A–U+202E, U+2066–U+2069, U+FEFF). The zero-width joiner and non-joiner are text: names and
// emoji need them.
func UnsafeRune(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == 0x061C, r == 0x200B, r == 0x200E, r == 0x200F, r == 0xFEFF:
		return true
	case 0x202A <= r && r <= 0x202E, 0x2066 <= r && r <= 0x2069:
		return true
	}
	return false
}
