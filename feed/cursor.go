package feed

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cursor is a reader's position in the audit log, and what a stream sends as each event's SSE id
// (so what a client resumes from with Last-Event-ID).
//
// Event ids are UUIDv7s made by several instances and written in batches, so they do not say in
// which order events were committed. The database numbers events as it inserts them (Seq), but a
// transaction that took a low number can commit after one that took a higher number: a reader that
// only remembered "the highest seq I have" would skip the late event for ever. So a cursor is the
// highest seq delivered, High, plus the seqs below it that were not there when High was read
// (Pending): numbers taken by transactions not committed yet, or by ones that rolled back, which
// nobody can tell apart from outside. Everything at or below High that is not pending has been
// delivered. Reading from a cursor asks for seq > High and for the pending seqs again; an event is
// delivered only if its seq is above High or pending, and delivering it removes it from Pending. So
// an event is delivered once (no duplicates) and a late one still is (no gap).
//
// A pending seq is given up after the window (Config.Window) from when it was first noticed
// missing: a transaction holding a seq for longer than that, which none of fluxauth's do, would have
// its event in the audit log but not in the live feeds. At most maxPending seqs are kept (the oldest
// go first) so that the id stays short whatever happens (a batch the database refused leaves a run
// of numbers that never commit).
//
// The text form is "High" when nothing is pending, which is every event's seq in the usual case, or
// "High:a-b,c" listing the pending seqs as ranges. Clients treat it as opaque.
type Cursor struct {
	high    int64
	pending map[int64]time.Time // seq -> when it was first noticed missing
	// text caches String until the cursor changes.
	text string
}

// maxPending bounds the seqs a cursor waits for.
const maxPending = 256

func newCursor(high int64) Cursor { return Cursor{high: high} }

// High returns the highest seq delivered.
func (c *Cursor) High() int64 { return c.high }

// clone returns an independent copy.
func (c *Cursor) clone() Cursor {
	n := Cursor{high: c.high, text: c.text}
	if len(c.pending) > 0 {
		n.pending = make(map[int64]time.Time, len(c.pending))
		for k, v := range c.pending {
			n.pending[k] = v
		}
	}
	return n
}

// accept reports whether the event numbered seq is new to the cursor, and records it delivered:
// above High it moves High and marks the seqs skipped pending; below, it must be pending.
func (c *Cursor) accept(seq int64, now time.Time) bool {
	if seq > c.high {
		if seq > c.high+1 {
			if c.pending == nil {
				c.pending = map[int64]time.Time{}
			}
			for k := max(c.high+1, seq-maxPending); k < seq; k++ {
				c.pending[k] = now
			}
			c.trim()
		}
		c.high = seq
		c.text = ""
		return true
	}
	if _, ok := c.pending[seq]; ok {
		delete(c.pending, seq)
		c.text = ""
		return true
	}
	return false
}

// trim drops the lowest pending seqs beyond maxPending.
func (c *Cursor) trim() {
	if len(c.pending) <= maxPending {
		return
	}
	for _, k := range c.pendingSeqs()[:len(c.pending)-maxPending] {
		delete(c.pending, k)
	}
}

// expire gives up the seqs pending since before now-window.
func (c *Cursor) expire(now time.Time, window time.Duration) {
	for k, noticed := range c.pending {
		if now.Sub(noticed) >= window {
			delete(c.pending, k)
			c.text = ""
		}
	}
}

// pendingSeqs returns the pending seqs in ascending order.
func (c *Cursor) pendingSeqs() []int64 {
	if len(c.pending) == 0 {
		return nil
	}
	out := make([]int64, 0, len(c.pending))
	for k := range c.pending {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// String is the cursor's text form (see Cursor).
func (c *Cursor) String() string {
	if c.text != "" {
		return c.text
	}
	var b strings.Builder
	b.WriteString(strconv.FormatInt(c.high, 10))
	p := c.pendingSeqs()
	for i := 0; i < len(p); {
		j := i
		for j+1 < len(p) && p[j+1] == p[j]+1 {
			j++
		}
		if i == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(p[i], 10))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.FormatInt(p[j], 10))
		}
		i = j + 1
	}
	c.text = b.String()
	return c.text
}

// ErrBadCursor is returned for a Last-Event-ID that no stream sent.
var ErrBadCursor = errors.New("feed: not a cursor this service sent")

// ParseCursor reads a cursor's text form. Its pending seqs count as noticed at now: the window
// runs again from the reconnection.
func ParseCursor(s string, now time.Time) (Cursor, error) {
	highText, rest, hasPending := strings.Cut(s, ":")
	high, err := parseSeq(highText)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	c := Cursor{high: high}
	if !hasPending {
		return c, nil
	}
	c.pending = map[int64]time.Time{}
	for _, r := range strings.Split(rest, ",") {
		loText, hiText, isRange := strings.Cut(r, "-")
		lo, err1 := parseSeq(loText)
		hi, err2 := lo, error(nil)
		if isRange {
			hi, err2 = parseSeq(hiText)
		}
		if err1 != nil || err2 != nil || lo < 1 || hi < lo || hi >= high || hi-lo >= maxPending {
			return Cursor{}, ErrBadCursor
		}
		for k := lo; k <= hi; k++ {
			c.pending[k] = now
		}
		if len(c.pending) > maxPending {
			return Cursor{}, ErrBadCursor
		}
	}
	return c, nil
}

// parseSeq reads a non-negative decimal seq, digits only.
func parseSeq(s string) (int64, error) {
	if s == "" || len(s) > 19 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, ErrBadCursor
	}
	return strconv.ParseInt(s, 10, 64)
}
