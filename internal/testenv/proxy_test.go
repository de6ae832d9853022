package testenv_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
)

func TestAPausedProxyHoldsTrafficWithoutClosingAndResumeDeliversIt(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	p := testenv.NewProxy(t, echo.Addr().String())
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.Pause()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 4)
	if n, err := c.Read(buf); n != 0 || !isTimeout(err) {
		t.Fatalf("paused: read %d bytes, err %v; want nothing until the deadline", n, err)
	}
	p.Resume()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("after Resume: %q, %v; want the held ping", buf, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
