package breaker

import (
	"sync"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	b := &Breaker{Pause: time.Hour, LogEvery: time.Hour}
	if !b.Usable() {
		t.Fatal("a new breaker is not usable")
	}
	// Of many concurrent failures exactly one is to be logged.
	var mu sync.Mutex
	logged := 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if b.Fail() {
				mu.Lock()
				logged++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if logged != 1 || b.Usable() {
		t.Errorf("logged %d of 50 failures, usable %v", logged, b.Usable())
	}

	short := &Breaker{Pause: time.Millisecond, LogEvery: 0}
	short.Fail()
	time.Sleep(5 * time.Millisecond)
	if !short.Usable() || !short.Fail() {
		t.Error("the pause did not end, or a failure after LogEvery was not reported")
	}
}
