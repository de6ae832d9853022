package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// IdleConfig is the open-connections test: Conns keep-alive connections held open together, each
// sending one request every Interval, as that many idle browser tabs would.
type IdleConfig struct {
	Addr     string // host:port of the target
	Conns    int
	Interval time.Duration
	// Hold is how long every connection is kept once the last one is open.
	Hold time.Duration
	// DialRate is new connections per second during the ramp: all at once would overflow the
	// server's accept backlog and measure that instead.
	DialRate int
	Path     string
	// Users, when set, give each request a user's bearer token (for Path /api/auth/me).
	Users []*User
}

// IdleResult is what the open-connections test saw.
type IdleResult struct {
	Summary    *Summary `json:"summary"`
	Conns      int      `json:"conns"`
	Opened     int64    `json:"opened"`     // successful dials, reconnections included
	DialErrors int64    `json:"dialErrors"` // dials that failed
	Dropped    int64    `json:"dropped"`    // connections that broke after opening
	PeakOpen   int64    `json:"peakOpen"`
	// MinOpenHeld is the fewest connections open at any sample during the hold: the test passes
	// when it equals Conns and the summary has no errors.
	MinOpenHeld int64 `json:"minOpenHeld"`
}

// Passed reports whether every connection stayed open and every request succeeded.
func (r *IdleResult) Passed() bool {
	return r.DialErrors == 0 && r.Dropped == 0 && r.MinOpenHeld == int64(r.Conns) &&
		r.Summary.Requests > 0 && r.Summary.Successes == r.Summary.Requests
}

// WriteText writes the result for a human.
func (r *IdleResult) WriteText(w io.Writer) {
	r.Summary.WriteText(w)
	fmt.Fprintf(w, "  connections  %d asked, %d opened, peak %d open, at least %d open throughout the hold\n", r.Conns, r.Opened, r.PeakOpen, r.MinOpenHeld)
	fmt.Fprintf(w, "  conn errors  %d failed dials, %d dropped\n", r.DialErrors, r.Dropped)
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "  verdict      %s\n", verdict)
}

// idleState is shared by the connection goroutines.
type idleState struct {
	cfg        IdleConfig
	dialer     *net.Dialer
	mu         sync.Mutex
	sum        *Summary
	open       atomic.Int64
	opened     atomic.Int64
	dialErrors atomic.Int64
	dropped    atomic.Int64
	// deadline is the end of the hold; written once before ready is closed, read after.
	deadline time.Time
}

func (st *idleState) record(r *vegeta.Result) {
	st.mu.Lock()
	st.sum.Add(r)
	st.mu.Unlock()
}

// Idle runs the open-connections test: open every connection (each sends its first request at once,
// as a browser opening one would), then hold them all for Hold. It ends within the ramp
// (Conns/DialRate) plus Hold plus about a minute, whatever the server does.
func Idle(ctx context.Context, cfg IdleConfig) (*IdleResult, error) {
	if cfg.Conns < 1 || cfg.Conns > 100_000 {
		return nil, errors.New("connections test: between 1 and 100000 connections")
	}
	if cfg.Interval <= 0 || cfg.Hold <= 0 || cfg.Hold > time.Hour {
		return nil, errors.New("connections test: interval and hold must be positive, hold at most 1h")
	}
	if cfg.DialRate < 1 {
		cfg.DialRate = 1000
	}
	if cfg.Path == "" {
		cfg.Path = "/healthz"
	}
	st := &idleState{cfg: cfg, dialer: newDialer(), sum: NewSummary(fmt.Sprintf("%d open connections, GET %s every %s", cfg.Conns, cfg.Path, cfg.Interval), 0)}
	ramp := time.Duration(float64(cfg.Conns) / float64(cfg.DialRate) * float64(time.Second))
	ctx, cancel := context.WithTimeout(ctx, ramp+cfg.Hold+time.Minute)
	defer cancel()

	cpu0 := processCPU()
	began := time.Now()
	var wg, dialed sync.WaitGroup
	ready := make(chan struct{})
	tick := time.NewTicker(time.Second / time.Duration(min(cfg.DialRate, int(time.Second))))
	launched := 0
launch:
	for i := range cfg.Conns {
		select {
		case <-ctx.Done():
			break launch
		case <-tick.C:
		}
		wg.Add(1)
		dialed.Add(1)
		launched++
		go func() {
			defer wg.Done()
			st.client(ctx, i, &dialed, ready)
		}()
	}
	tick.Stop()
	// Every connection has been tried (a dial or first request gives up within seconds): the hold
	// starts now, for everyone at once.
	dialed.Wait()
	holdStart := time.Now()
	st.deadline = holdStart.Add(cfg.Hold)
	close(ready)

	res := &IdleResult{Conns: cfg.Conns, MinOpenHeld: st.open.Load(), PeakOpen: st.open.Load()}
	t := time.NewTicker(250 * time.Millisecond)
sample:
	for {
		select {
		case <-ctx.Done():
			break sample
		case now := <-t.C:
			if now.After(st.deadline) {
				break sample
			}
			n := st.open.Load()
			res.PeakOpen = max(res.PeakOpen, n)
			res.MinOpenHeld = min(res.MinOpenHeld, n)
		}
	}
	t.Stop()
	wg.Wait()
	st.sum.ClientCPU = float64(processCPU()-cpu0) / float64(time.Since(began))
	st.sum.Close()
	res.Summary = st.sum
	res.Opened, res.DialErrors, res.Dropped = st.opened.Load(), st.dialErrors.Load(), st.dropped.Load()
	if launched < cfg.Conns {
		return res, ctx.Err()
	}
	return res, nil
}

// client is one connection: open it and send a first request, wait for the hold to start, then
// send a request every Interval (the first at a random offset, so they spread out) until the
// deadline, reopening the connection if it breaks.
func (st *idleState) client(ctx context.Context, i int, dialed *sync.WaitGroup, ready <-chan struct{}) {
	req := "GET " + st.cfg.Path + " HTTP/1.1\r\nHost: " + st.cfg.Addr + "\r\nUser-Agent: fluxload-idle\r\n"
	if len(st.cfg.Users) > 0 {
		req += "Authorization: Bearer " + st.cfg.Users[i%len(st.cfg.Users)].accessToken() + "\r\n"
	}
	reqBytes := []byte(req + "\r\n")
	var (
		conn net.Conn
		br   *bufio.Reader
	)
	closeConn := func() {
		if conn != nil {
			conn.Close()
			conn = nil
			st.open.Add(-1)
		}
	}
	defer closeConn()
	connect := func() {
		c, err := st.dialer.DialContext(ctx, "tcp", st.cfg.Addr)
		if err != nil {
			if ctx.Err() == nil {
				st.dialErrors.Add(1)
				st.record(&vegeta.Result{Timestamp: time.Now(), Error: "dial: " + err.Error()})
			}
			return
		}
		conn, br = c, bufio.NewReaderSize(c, 2048)
		st.opened.Add(1)
		st.open.Add(1)
	}
	send := func() {
		r := &vegeta.Result{Timestamp: time.Now(), Method: http.MethodGet}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		keep, err := st.roundTrip(conn, br, reqBytes, r)
		r.Latency = time.Since(r.Timestamp)
		if err != nil {
			r.Error = err.Error()
		}
		st.record(r)
		if err != nil || !keep {
			st.dropped.Add(1)
			closeConn()
		}
	}
	connect()
	if conn != nil {
		send()
	}
	dialed.Done()
	select {
	case <-ready:
	case <-ctx.Done():
		return
	}
	deadline := st.deadline
	next := time.Now().Add(rand.N(st.cfg.Interval))
	for next.Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		next = next.Add(st.cfg.Interval)
		if conn == nil {
			connect()
		}
		if conn != nil {
			send()
		}
	}
	// Stay open a little past the deadline, so the last samples of the hold see every connection
	// that survived it.
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(deadline) + 500*time.Millisecond):
	}
}

// roundTrip sends one request on conn and reads its answer into r, keeping the body only of a
// failure (for its error code). keep is false when the server said it will close the connection.
func (st *idleState) roundTrip(conn net.Conn, br *bufio.Reader, req []byte, r *vegeta.Result) (keep bool, err error) {
	if _, err := conn.Write(req); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return false, err
	}
	r.Code = uint16(resp.StatusCode)
	if resp.StatusCode >= 300 {
		r.Body = body
	}
	return !resp.Close, nil
}
