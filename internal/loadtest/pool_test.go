package loadtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// chainServer plays fluxauth's refresh rotation in memory: user i's token k answers with token k+1,
// and any token but the newest is a reuse. It fails the test if one user is asked for twice at once.
type chainServer struct {
	tb       testing.TB
	mu       sync.Mutex
	gen      []int
	inFlight []atomic.Bool
}

func newChainServer(tb testing.TB, n int) (*chainServer, []*User) {
	cs := &chainServer{tb: tb, gen: make([]int, n), inFlight: make([]atomic.Bool, n)}
	users := make([]*User, n)
	for i := range users {
		users[i] = &User{Email: fmt.Sprintf("u%d@example.com", i), refresh: chainToken(i, 0)}
	}
	return cs, users
}

func chainToken(user, gen int) string { return fmt.Sprintf("rt-%d-%d", user, gen) }

// answer handles one target the way a worker would and returns vegeta's result for it.
func (cs *chainServer) answer(t *vegeta.Target) *vegeta.Result {
	r := &vegeta.Result{Method: t.Method, URL: t.URL, Timestamp: time.Now()}
	k := strings.LastIndex(t.URL, userFragment)
	i, err := strconv.Atoi(t.URL[k+len(userFragment):])
	if k < 0 || err != nil {
		cs.tb.Errorf("target %q names no user", t.URL)
		return r
	}
	if !cs.inFlight[i].CompareAndSwap(false, true) {
		cs.tb.Errorf("user %d scheduled while its previous refresh was in flight", i)
	}
	time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
	var body struct{ RefreshToken string }
	if err := json.Unmarshal(t.Body, &body); err != nil {
		cs.tb.Errorf("body: %v", err)
	}
	cs.mu.Lock()
	if body.RefreshToken != chainToken(i, cs.gen[i]) {
		cs.tb.Errorf("user %d presented a stale token (generation %d expected)", i, cs.gen[i])
	}
	cs.gen[i]++
	next := chainToken(i, cs.gen[i])
	cs.mu.Unlock()
	r.Code = http.StatusOK
	r.Body, _ = json.Marshal(map[string]string{"refreshToken": next, "accessToken": "at"})
	// Free the user before the result is observed, as a real answer is off the wire before vegeta
	// hands it over.
	cs.inFlight[i].Store(false)
	return r
}

func TestRefreshTargeterNeverSchedulesAUserTwiceAtOnceAndFollowsEachChain(t *testing.T) {
	const users, workers, perWorker = 8, 32, 200
	cs, us := newChainServer(t, users)
	w, err := NewWorkload("refresh", WorkloadConfig{Base: "http://127.0.0.1:1", Users: us, UserWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Many workers build targets at once while one goroutine observes results, as in vegeta.
	results := make(chan *vegeta.Result)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				var tgt vegeta.Target
				if err := w.Targeter(&tgt); err != nil {
					t.Error(err)
					return
				}
				if tgt.Method == noIdleUser {
					t.Error("no idle user within 5s")
					continue
				}
				results <- cs.answer(&tgt)
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	n := 0
	for r := range results {
		w.Observe(r)
		n++
	}
	if n != workers*perWorker {
		t.Fatalf("%d results, want %d", n, workers*perWorker)
	}
	total := 0
	for i, u := range us {
		total += cs.gen[i]
		if u.refresh != chainToken(i, cs.gen[i]) {
			t.Errorf("user %d holds generation other than the newest %d", i, cs.gen[i])
		}
	}
	if total != n {
		t.Errorf("chains advanced %d times for %d answers", total, n)
	}
}

func TestRefreshTargeterCountsAWaitForABusyUserAsAFailure(t *testing.T) {
	_, us := newChainServer(t, 1)
	w, err := NewWorkload("refresh", WorkloadConfig{Base: "http://127.0.0.1:1", Users: us, UserWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var first, second vegeta.Target
	if err := w.Targeter(&first); err != nil || first.Method != http.MethodPost {
		t.Fatalf("first target: %v %q", err, first.Method)
	}
	// The only user is in flight: the second target must not reuse it, nor stop the attack.
	if err := w.Targeter(&second); err != nil || second.Method != noIdleUser {
		t.Fatalf("second target: %v %q, want %q", err, second.Method, noIdleUser)
	}
	if _, err := second.Request(); err == nil {
		t.Fatal("the no-idle-user target would have been sent")
	}
}

func TestRefreshObserverRetiresAUserWhoseSessionEnded(t *testing.T) {
	_, us := newChainServer(t, 2)
	w, _ := NewWorkload("refresh", WorkloadConfig{Base: "http://127.0.0.1:1", Users: us, UserWait: time.Millisecond})
	for range 2 {
		var tgt vegeta.Target
		_ = w.Targeter(&tgt)
		code, body := uint16(http.StatusUnauthorized), []byte(`{"error":{"code":"refresh_token_reused","message":"x"}}`)
		if strings.HasSuffix(tgt.URL, "=1") {
			code, body = 0, nil // a timeout: the user keeps its token and comes back
		}
		w.Observe(&vegeta.Result{URL: tgt.URL, Code: code, Body: body})
	}
	if w.Pool.Retired() != 1 {
		t.Fatalf("retired %d, want 1", w.Pool.Retired())
	}
	var tgt vegeta.Target
	_ = w.Targeter(&tgt)
	if !strings.HasSuffix(tgt.URL, userFragment+"1") || !strings.Contains(string(tgt.Body), chainToken(1, 0)) {
		t.Fatalf("after a lost answer the user should retry its old token; got %q", tgt.URL)
	}
}
