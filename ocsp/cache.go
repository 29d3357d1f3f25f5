package ocsp

import (
	"crypto"
	"math/big"
	"sync"
	"time"
)

// entry is one signed response and what the responder knows about it.
// Entries are immutable once cached: a change makes a new entry.
type entry struct {
	Answer
	reason    int
	revokedAt time.Time
	// checked is when the store last confirmed the status.
	checked time.Time
	// HTTP header values, formatted once.
	hdrLastModified, hdrExpires, hdrETag, hdrLength []string
}

func (e *entry) size() int64 { return int64(len(e.DER)+len(e.ETag))*2 + 320 }

// cacheKey names one response: issuer, CertID hash and serial.
type cacheKey struct {
	issuer *issuer
	hash   crypto.Hash
	n      uint8
	serial [20]byte
}

func newCacheKey(is *issuer, h crypto.Hash, serial *big.Int) cacheKey {
	// At most 20 octets (ParseRequest and Invalidate check), right-aligned.
	k := cacheKey{issuer: is, hash: h, n: uint8((serial.BitLen() + 7) / 8)}
	serial.FillBytes(k.serial[:])
	return k
}

// memCache is the in-process response cache, bounded by the bytes its
// entries hold. Past the bound it evicts arbitrary entries (Go's map order),
// which is cheap and good enough: a miss costs one signature.
type memCache struct {
	mu    sync.RWMutex
	m     map[cacheKey]*entry
	bytes int64
	limit int64
	// gen counts deletions. A response whose status was read before a
	// deletion (a revocation) must not be cached after it: putIf checks.
	gen uint64
}

// generation returns the deletion count, to pass to putIf later.
func (c *memCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// putIf caches e unless something was deleted since generation gen was
// read; it reports whether it did.
func (c *memCache) putIf(key cacheKey, e *entry, gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return false
	}
	c.putLocked(key, e)
	return true
}

func newMemCache(limit int64) *memCache {
	return &memCache{m: make(map[cacheKey]*entry), limit: limit}
}

func (c *memCache) get(key cacheKey) *entry {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	return e
}

func (c *memCache) putLocked(key cacheKey, e *entry) {
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

func (c *memCache) delete(keys ...cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range keys {
		if e := c.m[k]; e != nil {
			c.bytes -= e.size()
			delete(c.m, k)
		}
	}
}

// size returns the bytes the entries account for.
func (c *memCache) size() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytes
}

func (c *memCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
	c.bytes = 0
}
