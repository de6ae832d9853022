package ratelimit_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// noteAll notes one event at a time on key and returns the counts and the indexes of the calls that
// crossed.
func noteAll(tb testing.TB, th ratelimit.Threshold, key string, l ratelimit.Limit, times int) (counts []int, crossings []int) {
	tb.Helper()
	for i := range times {
		c, crossed, err := th.Note(context.Background(), key, l, 1)
		if err != nil {
			tb.Fatal(err)
		}
		counts = append(counts, c)
		if crossed {
			crossings = append(crossings, i)
		}
	}
	return counts, crossings
}

// testThresholdContract is what every Threshold does without the clock moving: counts add up and
// the crossing is reported once, by the call that reaches the rate.
func testThresholdContract(t *testing.T, newThreshold func(t *testing.T) ratelimit.Threshold) {
	l := ratelimit.Limit{Rate: 50, Period: time.Hour}
	t.Run("the call that reaches the rate crosses, once", func(t *testing.T) {
		th := newThreshold(t)
		counts, crossings := noteAll(t, th, "alert:ip:203.0.113.9", l, 120)
		if len(crossings) != 1 || crossings[0] != 49 {
			t.Fatalf("crossings at calls %v, want only the 50th (index 49)", crossings)
		}
		if counts[0] != 1 || counts[48] != 49 || counts[119] != 120 {
			t.Fatalf("counts %v", counts)
		}
	})
	t.Run("49 events never cross", func(t *testing.T) {
		th := newThreshold(t)
		if _, crossings := noteAll(t, th, "k", l, 49); len(crossings) != 0 {
			t.Fatalf("crossed at %v with 49 of 50", crossings)
		}
	})
	t.Run("keys count apart", func(t *testing.T) {
		th := newThreshold(t)
		noteAll(t, th, "a", l, 49)
		if c, crossed, err := th.Note(context.Background(), "b", l, 1); err != nil || crossed || c != 1 {
			t.Fatalf("other key: count %d crossed %v err %v", c, crossed, err)
		}
	})
	t.Run("n events at once count as n", func(t *testing.T) {
		th := newThreshold(t)
		if c, crossed, err := th.Note(context.Background(), "k", l, 30); err != nil || crossed || c != 30 {
			t.Fatalf("count %d crossed %v err %v", c, crossed, err)
		}
		if c, crossed, err := th.Note(context.Background(), "k", l, 25); err != nil || !crossed || c != 55 {
			t.Fatalf("count %d crossed %v err %v, want 55 and the crossing", c, crossed, err)
		}
	})
	t.Run("the zero limit never crosses", func(t *testing.T) {
		th := newThreshold(t)
		if _, crossings := noteAll(t, th, "k", ratelimit.Limit{}, 100); len(crossings) != 0 {
			t.Fatalf("crossed at %v with the limit off", crossings)
		}
	})
}

func TestMemoryThreshold(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	testThresholdContract(t, func(t *testing.T) ratelimit.Threshold { return ratelimit.NewMemory(testenv.NewClock(start)) })
}

func TestRedisThreshold(t *testing.T) {
	rdb := mustSharedRedis(t)
	testThresholdContract(t, func(t *testing.T) ratelimit.Threshold {
		return ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: uniquePrefix(t, rdb), Timeout: time.Second})
	})
}

// Two instances sharing Redis add up to one count and report one crossing between them.
func TestRedisThresholdIsSharedByInstances(t *testing.T) {
	rdb := mustSharedRedis(t)
	prefix := uniquePrefix(t, rdb)
	a := ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: prefix, Timeout: time.Second})
	b := ratelimit.NewRedis(mustRedisClient(t, testenv.RedisURL(t)), ratelimit.RedisConfig{Prefix: prefix, Timeout: time.Second})
	l := ratelimit.Limit{Rate: 50, Period: time.Hour}
	_, crossedA := noteAll(t, a, "k", l, 30)
	countsB, crossedB := noteAll(t, b, "k", l, 30)
	if len(crossedA) != 0 || len(crossedB) != 1 || crossedB[0] != 19 {
		t.Fatalf("crossings: instance a %v, instance b %v; want b's 20th call (index 19) only", crossedA, crossedB)
	}
	if countsB[29] != 60 {
		t.Fatalf("shared count %d, want 60", countsB[29])
	}
	if _, again := noteAll(t, a, "k", l, 100); len(again) != 0 {
		t.Fatalf("instance a crossed again at %v within the period", again)
	}
}

// The count covers the period ending now: events age out, the previous window's share shrinks as
// the current one advances, and after a period a key may cross again.
func TestMemoryThresholdSlidesWithTheClock(t *testing.T) {
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) // a multiple of 5m
	m := ratelimit.NewMemory(clock)
	l := ratelimit.Limit{Rate: 50, Period: 5 * time.Minute}
	note := func(n int) (int, bool) {
		t.Helper()
		c, crossed, err := m.Note(context.Background(), "k", l, n)
		if err != nil {
			t.Fatal(err)
		}
		return c, crossed
	}

	clock.Advance(4 * time.Minute)
	note(40) // late in the first window
	clock.Advance(2 * time.Minute)
	// One minute into the next window, four fifths of the previous one are still inside the period.
	if c, crossed := note(17); c != 17+32 || crossed {
		t.Fatalf("count %d crossed %v, want 49 = 17 + 40×4/5 and no crossing", c, crossed)
	}
	if c, crossed := note(1); c != 50 || !crossed {
		t.Fatalf("count %d crossed %v, want 50 and the crossing across the window boundary", c, crossed)
	}
	clock.Advance(time.Minute)
	if _, crossed := note(60); crossed {
		t.Fatal("crossed twice within one period")
	}
	clock.Advance(5 * time.Minute)
	// Two minutes into the third window: 10 new, and 78 of the second window weighted 3/5, rounded up.
	if c, crossed := note(10); c != 10+47 || !crossed {
		t.Fatalf("count %d crossed %v a period after the crossing: want 57 and a new crossing", c, crossed)
	}
	clock.Advance(15 * time.Minute)
	if c, crossed := note(1); c != 1 || crossed {
		t.Fatalf("count %d crossed %v after a quiet quarter hour, want 1 and no crossing", c, crossed)
	}
}

// While Redis is unreachable the Fallback counts in memory, so an instance still alerts on what it
// sees itself.
func TestFallbackThresholdCountsInMemoryWhileRedisIsDown(t *testing.T) {
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	closed := "redis://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/0"
	f := newInstance(t, closed, "fluxauth:rl:", clock, ratelimit.DefaultRedisTimeout)
	_, crossings := noteAll(t, f, "k", ratelimit.Limit{Rate: 5, Period: time.Minute}, 10)
	if len(crossings) != 1 || crossings[0] != 4 {
		t.Fatalf("crossings %v, want the 5th call's", crossings)
	}
	if !f.Degraded() {
		t.Fatal("not degraded with Redis unreachable")
	}
}
