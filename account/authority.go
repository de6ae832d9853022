package account

import (
	"strings"

	"github.com/fluxstudio/fluxauth/emailaddr"
	"github.com/fluxstudio/fluxauth/oidc"
)

// authoritative reports whether the provider is the authority for the address in its claims, so
// that its email_verified proves the address: Google for gmail.com and googlemail.com, and for a
// Google Workspace account's own domain (the token's hd equals the address's domain); Apple for
// its private relay and iCloud domains. Any other provider's, or domain's, email_verified says only
// that the provider once saw a code reach the address, which fluxauth does not take as proof: it
// neither links nor takes over an account on it, and an account made from it starts unverified.
func authoritative(provider string, c *oidc.Claims) bool {
	if !c.EmailVerified {
		return false
	}
	domain := domainOf(NormalizeEmail(c.Email))
	if domain == "" {
		return false
	}
	switch provider {
	case oidc.Google:
		if domain == "gmail.com" || domain == "googlemail.com" {
			return true
		}
		hd := strings.TrimSpace(c.HostedDomain)
		return hd != "" && domainOf("x@"+hd) == domain
	case oidc.Apple:
		switch domain {
		case "privaterelay.appleid.com", "icloud.com", "me.com", "mac.com":
			return true
		}
	}
	return false
}

// domainOf is the canonical (lower-case ASCII) domain of email, "" when it has none.
func domainOf(email string) string {
	canon := emailaddr.Canonical(email)
	at := strings.LastIndexByte(canon, '@')
	if at < 0 {
		return ""
	}
	return canon[at+1:]
}
