// Package emailaddr owns the canonical form of an email address: the one form fluxauth compares
// addresses in, stores as each account's unique key, and keys per-address limits on. Two addresses
// name one account exactly when their canonical forms are equal, in every store.
package emailaddr

import (
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// domains maps a domain the way UTS #46 does for lookup (nontransitional, so ß and ς stay
// themselves), with the hyphen, joiner and bidi checks, to its ASCII form. It is spelled out rather
// than taken from idna.Lookup, whose options "may change over time": stored keys must not.
var domains = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false))

// Canonical returns the form of addr that fluxauth compares and stores as an account's key.
//
//   - The address splits at its last '@' into a local part and a domain. Nothing is trimmed:
//     callers trim what users type first (NFKC may itself produce a leading space, "¨" being
//     " \u0308", and trimming it would make the form change when computed again).
//   - The local part is normalized to NFKC, lower-cased (Unicode's language-neutral mapping) and
//     normalized to NFKC again: "\u212Aate" (KELVIN SIGN) and "KATE" are "kate", "ÉLODIE" is
//     "élodie", full-width and ligature letters are their plain selves, "ẞ" is "ß" (but "ss" stays
//     another spelling). Nothing else is removed: dots and "+tags" stay, as most mail systems
//     deliver them differently.
//   - The domain is mapped by IDNA (UTS #46 lookup rules) to its lower-case ASCII form, so
//     "BÜCHER.example" and "xn--bcher-kva.example" are one domain. A domain IDNA refuses is
//     folded like a local part instead (and mapped by IDNA if it then accepts it), so that every
//     string has a canonical form: an address read from old rows or typed at login is always
//     comparable.
//
// Canonical is idempotent: the canonical form of a canonical form is itself.
func Canonical(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return foldText(addr)
	}
	return foldText(addr[:at]) + "@" + canonicalDomain(addr[at+1:])
}

func canonicalDomain(domain string) string {
	if d, err := domains.ToASCII(domain); err == nil {
		return d
	}
	// Folding may make an IDNA-refused domain acceptable (U+04C0 folds to U+04CF, which IDNA
	// takes): try again, so the form of the form is the same.
	folded := foldText(domain)
	if d, err := domains.ToASCII(folded); err == nil {
		return d
	}
	return folded
}

// foldText is NFKC, lower-casing, NFKC. Lower-casing rather than Unicode case folding: the form must
// be a fixed point, and folding is not one with x/text's cases.Fold (U+13A0 CHEROKEE LETTER A
// folds to U+AB70, which folds back), while lower-casing is. It is what PRECIS (RFC 8265) maps
// user names with.
func foldText(s string) string {
	return norm.NFKC.String(strings.ToLower(norm.NFKC.String(s)))
}
