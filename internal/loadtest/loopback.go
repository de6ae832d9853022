package loadtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// CheckTarget parses the -target URL and refuses anything that does not resolve only to loopback
// addresses: this harness exists to load a fluxauth on the same machine, never someone else's.
func CheckTarget(ctx context.Context, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("target %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("target %q: no host", raw)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("target %q: %v", raw, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("target %q: host resolves to nothing", raw)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return nil, fmt.Errorf("target %q: %s is not a loopback address; fluxload only loads a server on this machine", raw, a.IP)
		}
	}
	u.Path, u.RawQuery, u.Fragment = "", "", ""
	return u, nil
}

// loopbackOnly is a dialer Control hook: every connection, including one a redirect or a
// re-resolution would lead to, is checked against loopback at the moment it is made.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("fluxload: refusing to connect to non-loopback address %s", address)
	}
	return nil
}

// newDialer returns the only dialer this package uses.
func newDialer() *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnly}
}

// NewClient returns an HTTP client for the target with at most conns connections, which never
// follows redirects and never leaves loopback.
func NewClient(conns int, timeout time.Duration) *http.Client {
	if conns < 1 {
		conns = 1
	}
	tr := &http.Transport{
		DialContext:         newDialer().DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
