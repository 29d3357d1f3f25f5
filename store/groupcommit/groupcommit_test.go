package groupcommit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// next calls q.Next and fails the test if it does not return within a
// generous bound: a queue that lingers when it should not would hold the
// batch for its whole maximum delay, an hour in these tests.
func next(t *testing.T, q *Queue[int]) ([]int, bool) {
	t.Helper()
	type result struct {
		b  []int
		ok bool
	}
	c := make(chan result, 1)
	go func() {
		b, ok := q.Next(nil)
		c <- result{b, ok}
	}()
	select {
	case r := <-c:
		return r.b, r.ok
	case <-time.After(30 * time.Second):
		t.Fatal("Next held the batch")
		return nil, false
	}
}

func TestFirstWriteNotHeld(t *testing.T) {
	q := NewQueue[int](16, time.Hour)
	q.Put(context.Background(), 1)
	if b, ok := next(t, q); !ok || len(b) != 1 {
		t.Fatalf("got %v, %v", b, ok)
	}
}

// TestLingerPolicy feeds arrival gaps to the average and checks when a
// batch would be held for others.
func TestLingerPolicy(t *testing.T) {
	const maxDelay = 10 * time.Millisecond
	type run struct {
		every time.Duration
		n     int
	}
	tests := []struct {
		name    string
		arrived []run
		linger  bool
	}{
		{"no history", nil, false},
		{"one write", []run{{0, 1}}, false},
		{"sparse", []run{{3 * maxDelay, 50}}, false},
		{"just under one per delay", []run{{maxDelay * 9 / 10, 50}}, true},
		{"steady", []run{{maxDelay / 10, 50}}, true},
		{"a few quick writes from no history", []run{{maxDelay / 100, 6}}, true},
		{"a pause after a stream", []run{{maxDelay / 10, 50}, {20 * maxDelay, 1}}, true},
		{"sparse after a stream", []run{{maxDelay / 10, 50}, {20 * maxDelay, 6}}, false},
		{"an hour's pause after a stream", []run{{maxDelay / 10, 50}, {time.Hour, 6}}, false},
	}
	for _, tt := range tests {
		q := NewQueue[int](16, maxDelay)
		at := time.Unix(1e9, 0)
		for _, r := range tt.arrived {
			for range r.n {
				at = at.Add(r.every)
				q.observe(at)
			}
		}
		if got := q.lingers(); got != tt.linger {
			t.Errorf("%s: average gap %v, lingers %v, want %v", tt.name, q.gap, got, tt.linger)
		}
	}
}

func TestQueuedWritesJoin(t *testing.T) {
	q := NewQueue[int](4, 0)
	for i := range 6 {
		q.Put(context.Background(), i)
	}
	// Without a delay, what already queued joins, up to the batch bound.
	if b, _ := next(t, q); len(b) != 4 || b[0] != 0 || b[3] != 3 {
		t.Fatalf("first batch %v, want [0 1 2 3]", b)
	}
	if b, _ := next(t, q); len(b) != 2 || b[0] != 4 {
		t.Fatalf("second batch %v, want [4 5]", b)
	}
}

// TestLingersUnderLoad sends a steady stream and checks that batches form
// beyond what the committer finds queued, and that every write arrives
// once, in order.
func TestLingersUnderLoad(t *testing.T) {
	const n = 2000
	q := NewQueue[int](64, 50*time.Millisecond)
	go func() {
		for i := range n {
			q.Put(context.Background(), i)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var got, batches int
	for got < n {
		b, ok := next(t, q)
		if !ok {
			t.Fatal("queue closed")
		}
		for _, v := range b {
			if v != got {
				t.Fatalf("got write %d, want %d", v, got)
			}
			got++
		}
		if len(b) > 64 {
			t.Fatalf("batch of %d over the bound", len(b))
		}
		batches++
	}
	// The committer takes no time here, so nothing queues while it
	// commits: only lingering makes batches of more than one.
	if mean := float64(n) / float64(batches); mean < 4 {
		t.Errorf("%d batches for %d writes (%.1f per batch): not lingering", batches, n, mean)
	}
}

func TestCloseHandsOutQueued(t *testing.T) {
	q := NewQueue[int](16, time.Hour)
	for i := range 3 {
		q.Put(context.Background(), i)
	}
	q.Close()
	if b, ok := next(t, q); !ok || len(b) != 3 {
		t.Fatalf("after close: %v, %v; want the 3 queued", b, ok)
	}
	if b, ok := next(t, q); ok || len(b) != 0 {
		t.Fatalf("then: %v, %v; want nothing", b, ok)
	}
	if err := q.Put(context.Background(), 9); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
}

func TestPutRespectsContext(t *testing.T) {
	q := NewQueue[int](1, 0)
	for range 4 {
		q.Put(context.Background(), 1) // fills the buffer
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Put(ctx, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put on a full queue with an ended context: %v", err)
	}
}

// TestConcurrentPuts checks under the race detector that every write from
// many goroutines is handed out exactly once.
func TestConcurrentPuts(t *testing.T) {
	const workers, each = 8, 500
	q := NewQueue[int](32, time.Millisecond)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := q.Put(context.Background(), w*each+i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	seen := make(map[int]bool)
	var batch []int
	for len(seen) < workers*each {
		var ok bool
		batch, ok = q.Next(batch)
		if !ok {
			t.Fatal("queue closed")
		}
		for _, v := range batch {
			if seen[v] {
				t.Fatalf("write %d handed out twice", v)
			}
			seen[v] = true
		}
	}
	wg.Wait()
}
