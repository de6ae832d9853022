package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/internal/netaddr"
)

func TestClientIP(t *testing.T) {
	trusted, err := netaddr.ParseProxyList("10.0.0.0/8, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer, xff, want string
	}{
		{"direct client", "203.0.113.5:4000", "", "203.0.113.5"},
		{"forwarded header from an untrusted peer is ignored", "203.0.113.5:4000", "1.2.3.4", "203.0.113.5"},
		{"trusted proxy: right-most untrusted hop", "10.1.2.3:80", "6.6.6.6, 198.51.100.7", "198.51.100.7"},
		{"chain of trusted proxies is skipped", "10.1.2.3:80", "198.51.100.7, 192.0.2.1, 10.9.9.9", "198.51.100.7"},
		{"a forged left part cannot win", "10.1.2.3:80", "127.0.0.1, 198.51.100.7", "198.51.100.7"},
		{"malformed hop stops the walk", "10.1.2.3:80", "198.51.100.7, garbage", "10.1.2.3"},
		{"trusted proxy without header", "10.1.2.3:80", "", "10.1.2.3"},
		{"IPv6 peer", "[2001:db8::1]:443", "", "2001:db8::1"},
		{"IPv4-mapped IPv6 is unmapped", "[::ffff:203.0.113.9]:1", "", "203.0.113.9"},
		{"a forwarded zone of the client's choosing is dropped", "10.1.2.3:80", "fe80::1%" + strings.Repeat("z", 4000), "fe80::1"},
		{"the peer's zone is dropped", "[fe80::2%eth0]:443", "", "fe80::2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.peer
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			if got := api.ClientIP(r, trusted); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
	if _, err := netaddr.ParseProxyList("10.0.0.0/33"); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}
