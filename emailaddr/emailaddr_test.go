package emailaddr_test

import (
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/fluxstudio/fluxauth/emailaddr"
)

func TestCanonicalMakesLookalikesOneAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"kate@example.com", "kate@example.com"},
		{"KATE@Example.COM", "kate@example.com"},
		{"\u212Aate@example.com", "kate@example.com"},                // KELVIN SIGN
		{"ｋａｔｅ@ｅｘａｍｐｌｅ.ｃｏｍ", "kate@example.com"},                     // full-width letters and dot
		{"ÉLODIE@example.com", "élodie@example.com"},                 // precomposed
		{"E\u0301lodie@example.com", "élodie@example.com"},           // E + COMBINING ACUTE
		{"STRAẞE@example.com", "straße@example.com"},                 // capital sharp s lower-cases to ß
		{"\u13A0x@example.com", "\uAB70x@example.com"},               // Cherokee: lower-cased, and stable
		{"\ufb01nance@example.com", "finance@example.com"},           // LATIN SMALL LIGATURE FI
		{"ΣΊΣΥΦΟΣ@example.com", "σίσυφοσ@example.com"},               // language-neutral: no final sigma
		{"jane@BÜCHER.example", "jane@xn--bcher-kva.example"},        // IDNA to ASCII
		{"jane@xn--bcher-kva.example", "jane@xn--bcher-kva.example"}, // the same domain spelled in ASCII
		{"jane.doe+tag@example.com", "jane.doe+tag@example.com"},     // dots and tags are kept
		{"a@b@Example.com", "a@b@example.com"},                       // the domain is after the last '@'
		{"NoAtSign", "noatsign"},
		{"jane@EX_AMPLE.com", "jane@ex_ample.com"}, // refused by IDNA: folded instead
		{"", ""},
	} {
		if got := emailaddr.Canonical(tc.in); got != tc.want {
			t.Errorf("Canonical(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCanonicalKeepsDistinctAddressesDistinct(t *testing.T) {
	for _, pair := range [][2]string{
		{"kate@example.com", "kale@example.com"},
		{"élodie@example.com", "elodie@example.com"}, // an accent is not a case
		{"jane@example.com", "jane@example.org"},
		{"jane.doe@example.com", "janedoe@example.com"},
		{"jane@bücher.example", "jane@bucher.example"},
		{"straße@example.com", "strasse@example.com"}, // another spelling, not another case
	} {
		if a, b := emailaddr.Canonical(pair[0]), emailaddr.Canonical(pair[1]); a == b {
			t.Errorf("%q and %q are both %q", pair[0], pair[1], a)
		}
	}
}

// Every assigned code point, in a local part and in a domain, canonicalizes to a fixed point: a key
// computed from a stored canonical form (or typed back by a user who copied it) finds the account.
// (Unassigned and private-use code points map to themselves.)
func TestCanonicalIsIdempotentForEveryCodePoint(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf) {
			continue
		}
		for _, addr := range []string{string(r) + "x@example.com", "x@" + string(r) + ".example"} {
			once := emailaddr.Canonical(addr)
			if twice := emailaddr.Canonical(once); twice != once {
				t.Fatalf("U+%04X: Canonical(%q) = %q, but Canonical of that = %q", r, addr, once, twice)
			}
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"kate@example.com", "\u212Aate@example.com", "ÉLODIE@BÜCHER.example", "a@b@c", "x@xn--bcher-kva.example", "\xff@\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		once := emailaddr.Canonical(addr)
		if twice := emailaddr.Canonical(once); twice != once {
			t.Fatalf("Canonical(%q) = %q, but Canonical of that = %q", addr, once, twice)
		}
	})
}
