package periodic

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestEvery checks that fn runs repeatedly, not before the first period,
// and never again once Every has returned.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		Every(ctx, time.Millisecond, func() {
			if n.Add(1) == 3 {
				cancel()
			}
		})
		close(done)
	}()
	<-done
	after := n.Load()
	if after < 3 {
		t.Fatalf("fn ran %d times before ctx ended, want 3", after)
	}
	time.Sleep(5 * time.Millisecond)
	if n.Load() != after {
		t.Fatal("fn ran after Every returned")
	}

	var ran atomic.Bool
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	Every(ctx2, time.Hour, func() { ran.Store(true) })
	if ran.Load() {
		t.Fatal("fn ran before its first period")
	}
}
