package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth/internal/netaddr"
)

// maxIPText is the width of the ip_address columns (45 characters in the schema), which hold ClientIP's answer.
const maxIPText = 45

// FuzzClientIP: whatever X-Forwarded-For a request carries and whichever proxies are trusted,
// ClientIP answers a canonical IP address without zone that fits the ip_address column, and it is the
// peer's unless the peer is a trusted proxy; then it may be a hop of the header, but only one with
// nothing right of it but well-formed hops of trusted proxies, since a client can write anything left
// of what the first proxy it reached appended.
//
// Trust is judged by netaddr.ProxyList.Contains, not by ClientIP itself.
func FuzzClientIP(f *testing.F) {
	f.Add("203.0.113.5", "1.2.3.4", "10.0.0.0/8, 192.0.2.1")
	f.Add("10.1.2.3", "6.6.6.6, 198.51.100.7", "10.0.0.0/8, 192.0.2.1")
	f.Add("10.1.2.3", "198.51.100.7, garbage\n192.0.2.1, 10.9.9.9", "10.0.0.0/8, 192.0.2.1")
	f.Add("::ffff:10.1.2.3", "::ffff:198.51.100.7", "10.0.0.0/8")
	f.Add("2001:db8::1", "2001:db8::2, 2001:db8::3", "2001:db8::/64")
	f.Add("127.0.0.1", "fe80::1%eth0", "127.0.0.1/32, ::1/128")
	f.Fuzz(func(t *testing.T, peerText, xff, trustedText string) {
		peer, err := netip.ParseAddr(peerText)
		if err != nil {
			t.Skip("net/http's RemoteAddr always holds an IP address")
		}
		trusted, err := netaddr.ParseProxyList(trustedText)
		if err != nil {
			t.Skip("serve refuses a proxy list that does not parse")
		}
		r := &http.Request{RemoteAddr: net.JoinHostPort(peer.String(), "4242"), Header: http.Header{}}
		// Each line is one X-Forwarded-For header; a request may carry several.
		lines := strings.Split(xff, "\n")
		for _, l := range lines {
			r.Header.Add("X-Forwarded-For", l)
		}
		got := ClientIP(r, trusted)

		addr, err := netip.ParseAddr(got)
		if err != nil || addr.String() != got || addr.Zone() != "" || addr.Is4In6() || len(got) > maxIPText {
			t.Fatalf("ClientIP = %q: not a canonical IP address without zone of at most %d bytes", got, maxIPText)
		}
		// ClientIP drops zones before judging trust (see its comment), and so does the judge here.
		peer = peer.Unmap().WithZone("")
		if got == peer.String() {
			return
		}
		if !trusted.Contains(peer) {
			t.Fatalf("ClientIP = %q from the header of an untrusted peer %s", got, peer)
		}
		var hops []string
		for _, l := range lines {
			hops = append(hops, strings.Split(l, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				t.Fatalf("ClientIP = %q, which is not right of the malformed hop %q", got, hops[i])
			}
			a = a.Unmap().WithZone("")
			if a.String() == got {
				return
			}
			if !trusted.Contains(a) {
				t.Fatalf("ClientIP = %q, which is left of the untrusted hop %q", got, hops[i])
			}
		}
		t.Fatalf("ClientIP = %q is neither the peer %s nor a hop of %q", got, peer, xff)
	})
}
