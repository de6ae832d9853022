// Package netaddr parses the network addresses fluxauth is configured to trust or answer: the
// proxies whose X-Forwarded-For is believed and the browser origins that may call the API.
// internal/config reads them and api applies them; neither imports the other for it.
package netaddr

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// ProxyList is the set of peers (load balancers, reverse proxies) whose X-Forwarded-For is believed.
type ProxyList struct{ prefixes []netip.Prefix }

// ParseProxyList parses a comma-separated list of CIDRs or single addresses.
func ParseProxyList(s string) (*ProxyList, error) {
	pl := &ProxyList{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			addr, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR", part)
			}
			pl.prefixes = append(pl.prefixes, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR", part)
		}
		pl.prefixes = append(pl.prefixes, p.Masked())
	}
	return pl, nil
}

// Contains reports whether a is one of the trusted proxies; a nil list trusts nobody.
func (pl *ProxyList) Contains(a netip.Addr) bool {
	if pl == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range pl.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseOrigins parses a comma-separated list of exact origins, each written as a browser sends it
// in Origin: scheme://host[:port], lower-case, with no path and no default port
// (https://app.example.com, http://localhost:3000). A form no browser sends would never match, so
// it is refused rather than silently ignored; so are "*" and "null".
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("%q is not an origin such as https://app.example.com", o)
		}
		canonical := strings.ToLower(u.Scheme + "://" + u.Host)
		if port := u.Port(); (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
			canonical = strings.TrimSuffix(canonical, ":"+port)
		}
		if o != canonical {
			return nil, fmt.Errorf("%q: write the origin as browsers send it: %s", o, canonical)
		}
		out = append(out, o)
	}
	return out, nil
}
