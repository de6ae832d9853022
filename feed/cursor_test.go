package feed

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestCursorDeliversEachSeqOnceAndALateOneStill(t *testing.T) {
	c := newCursor(10)
	if !c.accept(11, t0) || c.String() != "11" {
		t.Fatalf("next seq: %q", c.String())
	}
	// 12 and 13 are held by transactions still open when 14 committed.
	if !c.accept(14, t0) || c.String() != "14:12-13" {
		t.Fatalf("after a skip: %q, want 14:12-13", c.String())
	}
	if c.accept(14, t0) || c.accept(11, t0) || c.accept(9, t0) {
		t.Fatal("a delivered seq was accepted again")
	}
	if !c.accept(13, t0) || c.String() != "14:12" {
		t.Fatalf("late 13: %q, want 14:12", c.String())
	}
	if c.accept(13, t0) {
		t.Fatal("late 13 accepted twice")
	}
	if !c.accept(12, t0) || c.String() != "14" {
		t.Fatalf("late 12: %q, want 14", c.String())
	}
	if !c.accept(20, t0) || c.String() != "20:15-19" {
		t.Fatalf("run of pending: %q", c.String())
	}
	c.accept(17, t0)
	if c.String() != "20:15-16,18-19" {
		t.Fatalf("ranges: %q", c.String())
	}
}

func TestCursorGivesUpPendingSeqsAfterTheWindow(t *testing.T) {
	c := newCursor(0)
	c.accept(3, t0)                    // 1, 2 pending since t0
	c.accept(5, t0.Add(4*time.Second)) // 4 pending since t0+4s
	c.expire(t0.Add(5*time.Second-time.Nanosecond), 5*time.Second)
	if got := c.pendingSeqs(); !slices.Equal(got, []int64{1, 2, 4}) {
		t.Fatalf("before the window: %v", got)
	}
	c.expire(t0.Add(5*time.Second), 5*time.Second)
	if got := c.pendingSeqs(); !slices.Equal(got, []int64{4}) || c.String() != "5:4" {
		t.Fatalf("after the window: %v %q, want only 4", got, c.String())
	}
	if c.accept(1, t0.Add(6*time.Second)) {
		t.Fatal("a seq given up on was delivered")
	}
}

func TestCursorWaitsForAtMostMaxPendingSeqs(t *testing.T) {
	c := newCursor(0)
	c.accept(1000, t0)
	p := c.pendingSeqs()
	if len(p) != maxPending || p[0] != 1000-maxPending || p[len(p)-1] != 999 {
		t.Fatalf("pending %d seqs from %d to %d, want the %d below 1000", len(p), p[0], p[len(p)-1], maxPending)
	}
	c.accept(1002, t0) // one more: the lowest goes
	if p := c.pendingSeqs(); len(p) != maxPending || p[0] != 1000-maxPending+1 {
		t.Fatalf("pending %d from %d", len(p), p[0])
	}
	// A cursor that long still reads back.
	back, err := ParseCursor(c.String(), t0)
	if err != nil || back.String() != c.String() {
		t.Fatalf("round trip of %q: %q, %v", c.String(), back.String(), err)
	}
}

func TestCursorReadsBackWhatItWrote(t *testing.T) {
	for _, s := range []string{"0", "7", "20:15-16,18-19", "9223372036854775806:1"} {
		c, err := ParseCursor(s, t0)
		if err != nil || c.String() != s {
			t.Errorf("ParseCursor(%q) = %q, %v", s, c.String(), err)
		}
	}
	c, _ := ParseCursor("20:15-16,18", t0)
	if !c.accept(16, t0) || c.accept(17, t0) || !c.accept(18, t0) || !c.accept(21, t0) {
		t.Fatal("a parsed cursor does not deliver exactly its pending seqs and what is above")
	}
}

func TestCursorRefusesWhatNoStreamSent(t *testing.T) {
	for _, s := range []string{"", "-1", "+3", "3.0", "abc", "1e3", " 3", "3:", "3:3", "3:4", "3:0", "3:2-1", "3:1,,2",
		"9:1-x", "99999999999999999999", "100000:1-300", "1000:" + spread(300)} {
		if _, err := ParseCursor(s, t0); !errors.Is(err, ErrBadCursor) {
			t.Errorf("ParseCursor(%q): %v, want ErrBadCursor", s, err)
		}
	}
}

// spread lists n separate seqs: more pending seqs than a cursor keeps.
func spread(n int) string {
	c := Cursor{high: int64(2*n + 2), pending: map[int64]time.Time{}}
	for i := 1; i <= n; i++ {
		c.pending[int64(2*i)] = t0
	}
	return c.String()[len("602:"):]
}
