package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
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

func (pl *ProxyList) contains(a netip.Addr) bool {
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

// ClientIP returns the address of the client that made r: the socket's peer, unless that peer is a
// trusted proxy, in which case the right-most X-Forwarded-For address that is not itself a trusted
// proxy. The right-most is used because every address to its left was written by the client and
// can be forged. An IPv6 zone ("fe80::1%eth0") is dropped: it names an interface of whichever host
// wrote it, means nothing here, and in a forwarded address its length is the client's choice, while
// the address is a rate-limit key and fills a 45-character column.
func ClientIP(r *http.Request, trusted *ProxyList) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap().WithZone("")
	if !trusted.contains(peer) {
		return peer.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		all = append(all, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(all) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(all[i]))
		if err != nil {
			// A malformed hop means everything left of it is unreliable.
			break
		}
		client = a.Unmap().WithZone("")
		if !trusted.contains(client) {
			break
		}
	}
	return client.String()
}

func (s *Server) clientIP(r *http.Request) string { return ClientIP(r, s.TrustedProxies) }
