package api_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/feed"
	"github.com/fluxstudio/fluxauth/postgres/postgrestest"
)

func TestFiftyStreamsGetEveryEventAtFiveHundredASecondAndASlowOneIsDropped(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	loadStreams(t, newEnv(t, withFeed(feed.Config{Buffer: 256}, 0)))
}

func TestFiftyStreamsGetEveryEventAtFiveHundredASecondOnPostgreSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	loadStreams(t, newEnv(t, withStore(postgrestest.MustOpenDB(t)), withFeed(feed.Config{Buffer: 256}, 0)))
}

// loadClient is a dashboard that reads everything and notes when each event arrived.
type loadClient struct {
	mu      sync.Mutex
	arrived map[string]time.Time
	twice   int
}

// loadStreams connects 50 streams and one that never reads, records 500 events a second for three
// seconds (150 under the race detector, which slows everything tenfold) through the audit recorder,
// and checks that every reading stream got every event once, within a second of its recording, that
// the one that does not read was dropped, and that the heap stayed bounded.
func loadStreams(t *testing.T, e *env) {
	const streams, seconds = 50, 3
	perSecond := 500
	if raceDetector {
		perSecond = 150
	}
	boss := e.admin(t, "load-boss@example.com")
	e.Recorder.Flush(context.Background())
	// Loopback's send buffers grow to megabytes, so a client that never reads would hold the whole
	// run in the kernel and never be slow; over a real network the window is what a slow client
	// reads. A fixed 16 KB per connection puts the slowness in the server's writes, where it is.
	base := serveWith(t, e, &http.Server{ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		if err := c.(*net.TCPConn).SetWriteBuffer(16 << 10); err != nil {
			panic(err)
		}
		return ctx
	}})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients := make([]*loadClient, streams)
	var reading sync.WaitGroup
	for i := range clients {
		c := &loadClient{arrived: map[string]time.Time{}}
		clients[i] = c
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/admin/security/stream", nil)
		req.Header.Set("Authorization", "Bearer "+boss.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, err, res)
		}
		reading.Add(1)
		go func() {
			defer reading.Done()
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				// data: {"id":"<36 characters>",...
				line := sc.Bytes()
				if !bytes.HasPrefix(line, []byte(`data: {"id":"`)) {
					continue
				}
				id := string(line[13:49])
				c.mu.Lock()
				if _, ok := c.arrived[id]; ok {
					c.twice++
				} else {
					c.arrived[id] = time.Now()
				}
				c.mu.Unlock()
			}
		}()
	}
	slow := slowStream(t, base, boss.AccessToken)
	defer slow.Close()
	waitFor(t, "every stream subscribed", func() bool { return e.Hub.Subscribers() == streams+1 })

	var baseline, peak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&baseline)
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampling:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peak.HeapAlloc {
					peak = m
				}
			}
		}
	}()

	// Recorded as requests record them: through the recorder, which writes in batches.
	pad := strings.Repeat("x", 200) // about the size of a failed login's user agent and metadata
	recorded := map[string]time.Time{}
	const tick = 20 * time.Millisecond
	perTick := perSecond * int(tick) / int(time.Second)
	ticker := time.NewTicker(tick)
	for range seconds * int(time.Second/tick) {
		<-ticker.C
		evs := make([]*fluxauth.SecurityEvent, perTick)
		now := time.Now()
		for i := range evs {
			evs[i] = &fluxauth.SecurityEvent{ID: uuid.Must(uuid.NewV7()).String(), Type: "load_test", Metadata: map[string]any{"pad": pad}}
			recorded[evs[i].ID] = now
		}
		if err := e.Recorder.Record(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	ticker.Stop()
	total := len(recorded)

	waitFor(t, "every stream to receive every event", func() bool {
		for _, c := range clients {
			c.mu.Lock()
			n := len(c.arrived)
			c.mu.Unlock()
			if n < total {
				return false
			}
		}
		return true
	})
	close(sampling)
	<-sampled
	var worst time.Duration
	for i, c := range clients {
		c.mu.Lock()
		if c.twice != 0 {
			t.Errorf("stream %d got %d events twice", i, c.twice)
		}
		for id, at := range recorded {
			got, ok := c.arrived[id]
			if !ok {
				t.Fatalf("stream %d never got event %s", i, id)
			}
			worst = max(worst, got.Sub(at))
		}
		c.mu.Unlock()
	}
	t.Logf("%d streams, %d events at %d/s: slowest delivery %v; heap %d MB at rest, peak %d MB",
		streams, total, perSecond, worst, baseline.HeapAlloc>>20, peak.HeapAlloc>>20)
	if worst > time.Second {
		t.Errorf("an event took %v to reach a stream, want under a second", worst)
	}
	if n := e.Hub.Subscribers(); n != streams {
		t.Errorf("%d subscribers, want %d: the stream that does not read must have been dropped", n, streams)
	}
	if !strings.Contains(e.Logs.String(), "client fell behind; dropped") {
		t.Error("the dropped stream was not logged as such")
	}
	// Held by every stream until its client had read them, the events would take about 0.5 KB ×
	// 1,500 × 51 streams = 38 MB; shared, and bounded by the buffers, the heap grows by far less.
	if grew := int64(peak.HeapAlloc) - int64(baseline.HeapAlloc); grew > 32<<20 {
		t.Errorf("heap grew by %d MB under load, want under 32 MB", grew>>20)
	}
	cancel()
	reading.Wait()
}

// slowStream opens a stream on a connection that never reads, with a small receive buffer so that
// the server's writes soon block.
func slowStream(t *testing.T, base, access string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /api/admin/security/stream HTTP/1.1\r\nHost: fluxauth\r\nAuthorization: Bearer %s\r\n\r\n", access)
	return conn
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
