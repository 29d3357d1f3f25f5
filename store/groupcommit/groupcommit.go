// Package groupcommit gathers concurrent writes into shared transactions.
//
// A commit (an fsync of SQLite's WAL, a round trip and a WAL flush in
// PostgreSQL) costs more than the rows in it, so under load each write
// should pay a share of one commit instead of one of its own. Waiting for
// company costs latency, though, and a lone write should not wait at all.
// A Queue therefore lingers only while writes come in a stream: it keeps a
// moving average of the time between arrivals and holds the first write of
// a batch for others only if that average is below the maximum delay.
package groupcommit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned by Put once the queue is closed.
var ErrClosed = errors.New("store closed")

// Queue hands writes from many goroutines to one committer in batches.
// Put and Close may be called concurrently; Next only by the committer.
type Queue[T any] struct {
	maxBatch int
	maxDelay time.Duration
	in       chan arrival[T]
	timer    *time.Timer

	// mu orders Put against Close: once Close returns, no write can be
	// queued behind the committer's last batch.
	mu     sync.RWMutex
	closed bool
	done   chan struct{}

	// The committer's view of the arrival rate: gap is a moving average
	// of the time between arrivals, last the latest arrival seen.
	gap  time.Duration
	last time.Time
}

type arrival[T any] struct {
	v  T
	at time.Time
}

// NewQueue returns a queue that gathers up to maxBatch writes per batch and
// holds the first write of a batch at most maxDelay for others to join
// (0: only what queued while the last commit ran joins).
func NewQueue[T any](maxBatch int, maxDelay time.Duration) *Queue[T] {
	if maxBatch < 1 {
		maxBatch = 1
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	// The first gap is taken as long: no lingering until a rate is seen.
	return &Queue[T]{
		maxBatch: maxBatch, maxDelay: maxDelay, in: make(chan arrival[T], 4*maxBatch), timer: t,
		done: make(chan struct{}), gap: maxDelay,
	}
}

// Put queues v for the next batch. It fails, with v not queued, if ctx
// ends first or the queue is closed.
func (q *Queue[T]) Put(ctx context.Context, v T) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	select {
	case q.in <- arrival[T]{v: v, at: time.Now()}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close refuses further writes; Next hands out those already queued.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

// Next blocks until there is a write and returns it with the others that
// join it, reusing batch's array. Once the queue is closed it returns what
// is still queued, without waiting, and then ok false: every write that Put
// accepted is handed out.
func (q *Queue[T]) Next(batch []T) (_ []T, ok bool) {
	batch = batch[:0]
	var first arrival[T]
	select {
	case first = <-q.in:
	case <-q.done:
		for len(batch) < q.maxBatch {
			select {
			case a := <-q.in:
				batch = append(batch, a.v)
			default:
				return batch, len(batch) > 0
			}
		}
		return batch, true
	}
	q.observe(first.at)
	batch = append(batch, first.v)
	// Linger only while writes come faster than one per maxDelay: a write
	// that comes alone is committed at once. The delay counts from now,
	// not from the first write's arrival: under load writes queue while a
	// commit runs, and lingering after it too makes the batches that save
	// the most (bench/api.sh: about 12 certificates per commit and 190 µs
	// of CPU per certificate, against 10 and 210 µs when a batch ended as
	// soon as the next write was not due before its deadline).
	var deadline <-chan time.Time
	if q.lingers() {
		q.timer.Reset(q.maxDelay)
		defer q.timer.Stop()
		deadline = q.timer.C
	}
	for len(batch) < q.maxBatch {
		select {
		case a := <-q.in:
			q.observe(a.at)
			batch = append(batch, a.v)
			continue
		default:
		}
		if deadline == nil {
			break
		}
		select {
		case a := <-q.in:
			q.observe(a.at)
			batch = append(batch, a.v)
		case <-deadline:
			return batch, true
		case <-q.done:
			return batch, true
		}
	}
	return batch, true
}

// lingers reports whether writes come faster than one per maxDelay.
func (q *Queue[T]) lingers() bool { return q.gap < q.maxDelay }

// observe folds an arrival into the average gap with weight 1/8. A gap
// counts at most twice maxDelay, so that after a pause of any length a few
// quick arrivals bring lingering back, and a few slow ones end it.
func (q *Queue[T]) observe(at time.Time) {
	if !q.last.IsZero() {
		q.gap += (min(max(at.Sub(q.last), 0), 2*q.maxDelay) - q.gap) / 8
	}
	if at.After(q.last) {
		q.last = at
	}
}
