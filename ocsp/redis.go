package ocsp

import (
	"context"
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pncpki/pncpki/internal/breaker"
)

// The shared tier: responses in Redis under
//
//	{prefix}resp:{issuer}:{hash}:{serial hex}
//
// and revocations announced on the channel {prefix}revoked as
// "{issuer} {serial hex}". Every replica drops its cached responses for
// that certificate as soon as the message arrives; a replica that loses its
// subscription drops its whole cache when it resubscribes, since it may
// have missed messages.

// DefaultRedisPrefix prefixes every Redis key and channel of pncpki's OCSP.
const DefaultRedisPrefix = "pncpki:ocsp:"

// redisTier is the Redis side of a Responder.
type redisTier struct {
	c      redis.UniversalClient
	prefix string

	up         atomic.Bool
	subscribed atomic.Bool
	breaker    breaker.Breaker // Redis is skipped for redisRetry after a failure
	errors     prometheus.Counter
	hits       prometheus.Counter
	pubsub     prometheus.Counter
}

func newRedisTier(c redis.UniversalClient, prefix string, reg prometheus.Registerer) (*redisTier, error) {
	// Logged at most once a minute: every request would otherwise log.
	rt := &redisTier{c: c, prefix: prefix, breaker: breaker.Breaker{Pause: redisRetry, LogEvery: time.Minute},
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "pncpki_ocsp_redis_errors_total", Help: "Redis operations that failed; the responder then answers from the store."}),
		hits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "pncpki_ocsp_redis_hits_total", Help: "Responses taken from the shared Redis tier."}),
		pubsub: prometheus.NewCounter(prometheus.CounterOpts{Name: "pncpki_ocsp_revocations_received_total", Help: "Revocations received through Redis pub/sub."}),
	}
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pncpki_ocsp_redis_up", Help: "1 while the last Redis operation succeeded."},
		func() float64 {
			if rt.up.Load() {
				return 1
			}
			return 0
		})
	return rt, register(reg, rt.errors, rt.hits, rt.pubsub, up)
}

func respKey(prefix, issuer string, h crypto.Hash, serial *big.Int) string {
	return fmt.Sprintf("%sresp:%s:%d:%x", prefix, issuer, int(h), serial)
}

// revokedKey marks a revoked certificate. A "good" response in Redis is
// ignored while the marker exists: a replica that read the status just
// before the revocation may still write one after Announce deleted them.
func revokedKey(prefix, issuer string, serial *big.Int) string {
	return fmt.Sprintf("%srevoked:%s:%x", prefix, issuer, serial)
}

// revokedMarkerTTL outlives any response signed before the revocation
// (their validity is at most a day by default; 8 days covers a week-long
// one).
const revokedMarkerTTL = 8 * 24 * time.Hour

// entry encoding: version 1, status, reason, then unix milliseconds of
// revokedAt, unix seconds of thisUpdate and nextUpdate (responses carry
// whole seconds), unix milliseconds of checked, then the DER.
func encodeEntry(e *entry) []byte {
	b := make([]byte, 0, 4+32+len(e.DER))
	b = append(b, 1, byte(e.Status))
	b = binary.BigEndian.AppendUint16(b, uint16(e.reason))
	var revoked int64
	if !e.revokedAt.IsZero() {
		revoked = e.revokedAt.UnixMilli()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(revoked))
	b = binary.BigEndian.AppendUint64(b, uint64(e.ThisUpdate.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(e.NextUpdate.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(e.checked.UnixMilli()))
	return append(b, e.DER...)
}

func (r *Responder) decodeEntry(b []byte) (*entry, error) {
	if len(b) < 36 || b[0] != 1 || b[1] > Unknown {
		return nil, errors.New("bad cached OCSP entry")
	}
	unix := func(i int) time.Time { return time.Unix(int64(binary.BigEndian.Uint64(b[i:])), 0).UTC() }
	st := certStatus{status: int(b[1]), reason: int(binary.BigEndian.Uint16(b[2:]))}
	if ms := int64(binary.BigEndian.Uint64(b[4:])); ms != 0 {
		st.revokedAt = time.UnixMilli(ms).UTC()
	}
	e := r.newEntry(append([]byte(nil), b[36:]...), st, unix(12), unix(20), true)
	e.checked = time.UnixMilli(int64(binary.BigEndian.Uint64(b[28:])))
	return e, nil
}

// fromRedis returns the shared response, or nil on a miss or when Redis is
// unreachable (then the caller signs; that is logged and counted).
func (r *Responder) fromRedis(ctx context.Context, is *issuer, h crypto.Hash, serial *big.Int) *entry {
	if !r.redisUsable() {
		return nil
	}
	var get *redis.StringCmd
	var marked *redis.IntCmd
	_, err := r.redis.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, respKey(r.redis.prefix, is.name, h, serial))
		marked = p.Exists(ctx, revokedKey(r.redis.prefix, is.name, serial))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		r.redisDown(err)
		return nil
	}
	r.redis.up.Store(true)
	b, err := get.Bytes()
	if err != nil {
		return nil
	}
	e, err := r.decodeEntry(b)
	if err != nil {
		r.log.Warn("ignoring a bad OCSP entry in Redis", "err", err)
		return nil
	}
	if e.Status == Good && marked.Val() > 0 {
		return nil // written by a replica that had not seen the revocation
	}
	r.redis.hits.Inc()
	return e
}

func (r *Responder) toRedis(ctx context.Context, is *issuer, h crypto.Hash, serial *big.Int, e *entry) {
	if !r.redisUsable() {
		return
	}
	ttl := time.Until(e.NextUpdate)
	if ttl <= 0 {
		return
	}
	if err := r.redis.c.Set(ctx, respKey(r.redis.prefix, is.name, h, serial), encodeEntry(e), ttl).Err(); err != nil {
		r.redisDown(err)
	}
}

// redisRetry is how long the responder leaves Redis alone after a failure,
// so that an outage costs requests no dial timeouts.
const redisRetry = 5 * time.Second

func (r *Responder) redisUsable() bool {
	return r.redis != nil && r.redis.breaker.Usable()
}

func (r *Responder) redisDown(err error) {
	r.redis.errors.Inc()
	r.redis.up.Store(false)
	if r.redis.breaker.Fail() {
		r.log.Error("Redis unreachable: answering from the store and signing locally", "err", err)
	}
}

// Announce tells every responder sharing the Redis at c that a certificate
// was revoked: it deletes the shared responses and publishes the
// revocation. Call it after the revocation is durable in the store.
func Announce(ctx context.Context, c redis.UniversalClient, prefix, issuer, serialHex string) error {
	serial, ok := new(big.Int).SetString(serialHex, 16)
	if !ok {
		return fmt.Errorf("serial %q is not hex", serialHex)
	}
	keys := make([]string, 0, len(Hashes))
	for _, h := range Hashes {
		keys = append(keys, respKey(prefix, issuer, h, serial))
	}
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, revokedKey(prefix, issuer, serial), "1", revokedMarkerTTL)
		p.Del(ctx, keys...)
		p.Publish(ctx, prefix+"revoked", issuer+" "+serial.Text(16))
		return nil
	})
	if err != nil {
		return fmt.Errorf("announce revocation: %w", err)
	}
	return nil
}

// Revoked drops this responder's cached answers for a certificate and,
// with Redis, announces the revocation to every replica in the
// background: the revocation is durable already, and the store's
// revocation feed reaches every replica when Redis does not, so a slow or
// absent Redis never holds up the revocation's answer (it took seconds
// each while Redis was down).
func (r *Responder) Revoked(ctx context.Context, issuer, serialHex string) error {
	r.Invalidate(issuer, serialHex)
	if !r.redisUsable() {
		return nil // no Redis, or down: the revocation feed carries it
	}
	go func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceTimeout)
		defer cancel()
		if err := Announce(actx, r.redis.c, r.redis.prefix, issuer, serialHex); err != nil {
			r.redisDown(err)
		}
	}()
	return nil
}

// announceTimeout bounds a background announcement.
const announceTimeout = 2 * time.Second

// crlLater has issuer's CRL signed again, off the path that receives
// announcements: a burst of revocations of one CA makes one new CRL, and
// the cache updates behind it are not held up by signing.
func (r *Responder) crlLater(ctx context.Context, issuer string) {
	r.crlMu.Lock()
	defer r.crlMu.Unlock()
	if r.crlDirty == nil {
		r.crlDirty = map[string]bool{}
	}
	r.crlDirty[issuer] = true
	if r.crlRunning {
		return
	}
	r.crlRunning = true
	go func() {
		for {
			r.crlMu.Lock()
			var next string
			for is := range r.crlDirty {
				next = is
				break
			}
			if next == "" {
				r.crlRunning = false
				r.crlMu.Unlock()
				return
			}
			delete(r.crlDirty, next)
			r.crlMu.Unlock()
			if _, err := r.opts.CA.CurrentCRL(ctx, next); err != nil {
				r.log.Error("CRL after announced revocation", "ca", next, "err", err)
			}
		}
	}()
}

// subscribe applies announced revocations until ctx ends.
func (r *Responder) subscribe(ctx context.Context) {
	ps := r.redis.c.Subscribe(ctx, r.redis.prefix+"revoked")
	defer ps.Close()
	subscribed := false
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.redisDown(err)
			r.redis.subscribed.Store(false)
			// go-redis reconnects on the next Receive; do not spin.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if subscribed {
				// Messages may have been lost while disconnected.
				r.cache.clear()
				r.log.Warn("Redis subscription restored: dropped the OCSP cache")
			}
			subscribed = true
			r.redis.up.Store(true)
			r.redis.subscribed.Store(true)
		case *redis.Message:
			issuer, serial, ok := strings.Cut(m.Payload, " ")
			if !ok {
				continue
			}
			r.Invalidate(issuer, serial)
			r.redis.pubsub.Inc()
			r.crlLater(ctx, issuer)
			if r.opts.OnRevoked != nil {
				r.opts.OnRevoked(issuer, serial)
			}
		}
	}
}

// Subscribed reports whether revocation announcements are being received
// (always false without Redis).
func (r *Responder) Subscribed() bool { return r.redis != nil && r.redis.subscribed.Load() }
