package netaddr

import (
	"net/netip"
	"strings"
	"testing"
)

func TestOriginsAreWrittenAsBrowsersSendThem(t *testing.T) {
	got, err := ParseOrigins(" https://app.example.com, http://localhost:3000 ,https://a.example.com:8443")
	if err != nil || strings.Join(got, " ") != "https://app.example.com http://localhost:3000 https://a.example.com:8443" {
		t.Fatalf("%q, %v", got, err)
	}
	if got, err := ParseOrigins(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %q, %v", got, err)
	}
	for _, bad := range []string{"*", "null", "app.example.com", "https://app.example.com/", "https://app.example.com/path",
		"HTTPS://App.example.com", "https://app.example.com:443", "http://localhost:80", "ftp://x.example.com", "https://u:p@x.example.com"} {
		if _, err := ParseOrigins(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAProxyListTrustsItsAddressesAndPrefixesOnly(t *testing.T) {
	pl, err := ParseProxyList(" 10.0.0.0/8, 192.0.2.1 ,2001:db8::/64")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "192.0.2.1": true, "192.0.2.2": false, "11.0.0.1": false,
		"2001:db8::5": true, "2001:db8:1::5": false,
	} {
		if got := pl.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	var none *ProxyList
	if none.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Error("a nil list trusted a peer")
	}
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0.1/"} {
		if _, err := ParseProxyList(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
