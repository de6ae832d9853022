package testenv_test

import (
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth/internal/testenv"
)

var start = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func received(ch <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-ch:
		return t, true
	default:
		return time.Time{}, false
	}
}

func TestATimerFiresWhenTheClockReachesItsDeadlineAndNotBefore(t *testing.T) {
	c := testenv.NewClock(start)
	_, ch := c.NewTimer(time.Minute)
	c.Advance(time.Minute - time.Microsecond)
	if _, ok := received(ch); ok {
		t.Fatal("the timer fired before its deadline")
	}
	c.Advance(time.Microsecond)
	at, ok := received(ch)
	if !ok || !at.Equal(start.Add(time.Minute)) {
		t.Fatalf("at its deadline the timer sent %v, %v; want %v", at, ok, start.Add(time.Minute))
	}
	c.Advance(time.Hour)
	if _, ok := received(ch); ok {
		t.Fatal("a timer fired twice")
	}
}

func TestATimerOfNoDurationFiresAtOnce(t *testing.T) {
	c := testenv.NewClock(start)
	_, ch := c.NewTimer(0)
	if _, ok := received(ch); !ok {
		t.Fatal("a zero timer did not fire at once")
	}
	if n := len(c.WaitTimers(t, 0)); n != 0 {
		t.Fatalf("%d timers armed after a zero timer fired", n)
	}
}

func TestAStoppedTimerNeverFires(t *testing.T) {
	c := testenv.NewClock(start)
	tm, ch := c.NewTimer(time.Minute)
	if !tm.Stop() {
		t.Fatal("Stop of an armed timer reported it was not armed")
	}
	c.Advance(time.Hour)
	if _, ok := received(ch); ok {
		t.Fatal("a stopped timer fired")
	}
	if tm.Stop() {
		t.Fatal("a second Stop reported stopping the timer")
	}
	// Stopped after firing, before the tick was received: the stale tick is discarded.
	tm, ch = c.NewTimer(time.Minute)
	c.Advance(time.Minute)
	tm.Stop()
	if _, ok := received(ch); ok {
		t.Fatal("a tick was received after Stop")
	}
}

func TestATickerFiresEveryPeriodAndDropsWhatItsReceiverMissed(t *testing.T) {
	c := testenv.NewClock(start)
	tk, ch := c.NewTicker(time.Second)
	for i := 1; i <= 3; i++ {
		c.Advance(time.Second)
		at, ok := received(ch)
		if !ok || !at.Equal(start.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("tick %d: %v, %v", i, at, ok)
		}
	}
	c.Advance(10 * time.Second) // ten periods, one receivable tick
	if _, ok := received(ch); !ok {
		t.Fatal("no tick after ten periods")
	}
	if _, ok := received(ch); ok {
		t.Fatal("more than one tick queued")
	}
	if at := c.WaitTimers(t, 1); !at[0].Equal(start.Add(14 * time.Second)) {
		t.Fatalf("next tick due %v, want the next whole period %v", at[0], start.Add(14*time.Second))
	}
	tk.Stop()
	c.Advance(time.Minute)
	if _, ok := received(ch); ok {
		t.Fatal("a stopped ticker ticked")
	}
}

func TestWaitTimersReturnsOnceALoopHasArmedItsTimer(t *testing.T) {
	c := testenv.NewClock(start)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, ch := c.NewTimer(time.Hour)
		<-ch
		c.NewTimer(2 * time.Hour)
	}()
	if at := c.WaitTimers(t, 1); len(at) != 1 || !at[0].Equal(start.Add(time.Hour)) {
		t.Fatalf("armed %v, want one timer at %v", at, start.Add(time.Hour))
	}
	c.Advance(time.Hour)
	// The fired timer no longer counts: this returns only once the loop has armed the next.
	if at := c.WaitTimers(t, 1); len(at) != 1 || !at[0].Equal(start.Add(3*time.Hour)) {
		t.Fatalf("armed %v, want the loop's second timer at %v", at, start.Add(3*time.Hour))
	}
	<-done
}
