// Package breaker keeps a shared dependency (Redis) out of the request
// path for a while after it failed: during an outage a request then costs
// no dial timeout, and the failure is logged once in a while rather than
// for every request.
package breaker

import (
	"sync/atomic"
	"time"
)

// Breaker is safe for concurrent use; its zero value with Pause and
// LogEvery set is ready.
type Breaker struct {
	Pause    time.Duration // how long the dependency is left alone after a failure
	LogEvery time.Duration // how often Fail reports that a failure is worth logging

	downUntil atomic.Int64 // unix nanoseconds
	lastLog   atomic.Int64 // unix nanoseconds of the last failure reported for logging
}

// Usable reports whether the dependency is worth asking now.
func (b *Breaker) Usable() bool { return time.Now().UnixNano() >= b.downUntil.Load() }

// Fail notes a failure: the dependency is left alone for Pause. It
// returns true for at most one failure per LogEvery, the one to log.
func (b *Breaker) Fail() (log bool) {
	now := time.Now().UnixNano()
	b.downUntil.Store(now + int64(b.Pause))
	last := b.lastLog.Load()
	return now-last >= int64(b.LogEvery) && b.lastLog.CompareAndSwap(last, now)
}
