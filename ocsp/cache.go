package ocsp

import (
	"sync"
	"time"
)

// entry is one signed response and what the responder knows about it.
type entry struct {
	der        []byte
	etag       string
	status     int
	reason     int
	revokedAt  time.Time
	thisUpdate time.Time
	nextUpdate time.Time
	// checked is when the store last confirmed the status.
	checked time.Time
}

func (e *entry) size() int64 { return int64(len(e.der)+len(e.etag)) + 160 }

// memCache is the in-process response cache, bounded by the bytes its
// entries hold. Past the bound it evicts arbitrary entries (Go's map order),
// which is cheap and good enough: a miss costs one signature.
type memCache struct {
	mu    sync.RWMutex
	m     map[string]*entry
	bytes int64
	limit int64
}

func newMemCache(limit int64) *memCache {
	return &memCache{m: make(map[string]*entry), limit: limit}
}

func (c *memCache) get(key string) *entry {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	return e
}

func (c *memCache) put(key string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[key]; old != nil {
		c.bytes -= old.size()
	}
	c.m[key] = e
	c.bytes += e.size()
	for k, v := range c.m {
		if c.bytes <= c.limit {
			break
		}
		if k != key {
			delete(c.m, k)
			c.bytes -= v.size()
		}
	}
}

func (c *memCache) delete(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if e := c.m[k]; e != nil {
			c.bytes -= e.size()
			delete(c.m, k)
		}
	}
}

// stats returns the number of entries and the bytes they account for.
func (c *memCache) stats() (int, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.bytes
}
