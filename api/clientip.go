package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/fluxstudio/fluxauth/internal/netaddr"
)

// ClientIP returns the address of the client that made r: the socket's peer, unless that peer is a
// trusted proxy, in which case the right-most X-Forwarded-For address that is not itself a trusted
// proxy. The right-most is used because every address to its left was written by the client and
// can be forged. An IPv6 zone ("fe80::1%eth0") is dropped: it names an interface of whichever host
// wrote it, means nothing here, and in a forwarded address its length is the client's choice, while
// the address is a rate-limit key and fills a 45-character column.
func ClientIP(r *http.Request, trusted *netaddr.ProxyList) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap().WithZone("")
	if !trusted.Contains(peer) {
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
		if !trusted.Contains(client) {
			break
		}
	}
	return client.String()
}

func (s *Server) clientIP(r *http.Request) string { return ClientIP(r, s.TrustedProxies) }
