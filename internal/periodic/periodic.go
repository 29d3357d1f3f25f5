// Package periodic runs background work on a fixed period.
package periodic

import (
	"context"
	"time"
)

// Every runs fn each period until ctx ends; the first run is one period
// after the call. It returns when ctx ends.
func Every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
