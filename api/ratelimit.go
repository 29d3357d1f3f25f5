package api

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/httprate"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/internal/breaker"
	"github.com/pncpki/pncpki/store"
)

// RateLimit is the per-tenant request budget: Requests per Window, for each
// tenant (administrators by token subject; unauthenticated callers by IP).
type RateLimit struct {
	Requests int
	Window   time.Duration
	// Redis, when set, shares the counters between replicas.
	Redis redis.UniversalClient
}

// Limit wraps next with the tenant's request budget: the API's own, so
// that one budget covers every door that issues or reads (the API, EST,
// the Open Plug&Charge interfaces), not one each.
func (s *Server) Limit(next http.Handler) http.Handler {
	if s.RateLimit.Requests <= 0 {
		return next
	}
	s.limiterOnce.Do(func() {
		opts := []httprate.Option{httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			WriteError(w, http.StatusTooManyRequests, "rate.limited", "too many requests for this tenant; retry after the window")
		})}
		if s.RateLimit.Redis != nil {
			opts = append(opts, httprate.WithLimitCounter(newFallbackCounter(&redisCounter{c: s.RateLimit.Redis},
				httprate.NewLocalLimitCounter(s.RateLimit.Window), s.Metrics)))
		}
		s.limiter = httprate.NewRateLimiter(s.RateLimit.Requests, s.RateLimit.Window, opts...)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.limiter.RespondOnLimit(w, r, s.rateKey(r)) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rateKey names who a request counts against.
func (s *Server) rateKey(r *http.Request) string {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if c, err := s.verify(tok); err == nil {
			if c.Role == auth.RoleAdmin {
				return "subject:" + c.Subject
			}
			return "tenant:" + c.Tenant
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// tokenCache keeps verified tokens (by their hash) until they expire, so a
// client's every call does not pay for an ECDSA verification.
type tokenCache struct {
	mu sync.Mutex
	m  map[[32]byte]*auth.Claims
}

const maxCachedTokens = 10_000

// verify checks a token, from the cache when it was verified before and
// has not expired since.
// VerifyToken checks a bearer token as the API does (pncd's key or the
// JWKS, revocations, the verified-token cache), for other endpoints on the
// same server (EST).
func (s *Server) VerifyToken(token string) (*auth.Claims, error) { return s.verify(token) }

func (s *Server) verify(token string) (*auth.Claims, error) {
	now := s.Now()
	h := sha256.Sum256([]byte(token))
	s.tokens.mu.Lock()
	c := s.tokens.m[h]
	s.tokens.mu.Unlock()
	if c != nil && now.Before(c.ExpiresAt.Time) {
		if s.revocations.has(s.Store, c.ID, now) {
			return nil, &auth.Error{Reason: "token revoked"}
		}
		return c, nil
	}
	var err error
	if s.JWKS != nil && issuerOf(token) == s.JWKS.Issuer {
		c, err = s.JWKS.Verify(context.Background(), token, now)
	} else {
		c, err = s.Key.Verify(token, now)
	}
	if err != nil {
		return nil, err
	}
	if s.revocations.has(s.Store, c.ID, now) {
		return nil, &auth.Error{Reason: "token revoked"}
	}
	s.tokens.mu.Lock()
	if s.tokens.m == nil || len(s.tokens.m) >= maxCachedTokens {
		s.tokens.m = map[[32]byte]*auth.Claims{}
	}
	s.tokens.m[h] = c
	s.tokens.mu.Unlock()
	return c, nil
}

// RevocationRefresh is how often a replica reloads the revoked token IDs:
// a token revoked on another replica stops working within it.
const RevocationRefresh = 5 * time.Second

// revocations caches the IDs of revoked tokens.
type revocations struct {
	mu     sync.Mutex
	ids    map[string]bool
	loaded time.Time
}

func (r *revocations) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]bool{}
	}
	r.ids[id] = true
}

// has reports whether id is revoked, reloading the set from the store when
// it is older than RevocationRefresh. If the store does not answer, the
// last set stays in use.
func (r *revocations) has(st store.Store, id string, now time.Time) bool {
	if id == "" {
		return false // external tokens without jti cannot be revoked here
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.loaded) > RevocationRefresh {
		if ids, err := st.RevokedTokens(context.Background(), now); err == nil {
			r.ids = make(map[string]bool, len(ids))
			for _, x := range ids {
				r.ids[x] = true
			}
			r.loaded = now
		}
	}
	return r.ids[id]
}

// issuerOf reads a token's iss without verifying anything, to pick the key
// set that must verify it.
func issuerOf(token string) string {
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		return ""
	}
	return c.Issuer
}

// redisCounter is httprate's sliding-window counter in Redis, so replicas
// share one budget per tenant.
type redisCounter struct {
	c      redis.UniversalClient
	window time.Duration
}

func (r *redisCounter) Config(_ int, window time.Duration) { r.window = window }

func (r *redisCounter) key(key string, w time.Time) string {
	return "pncpki:rate:" + key + ":" + strconv.FormatInt(w.Unix(), 10)
}

func (r *redisCounter) Increment(key string, w time.Time) error { return r.IncrementBy(key, w, 1) }

func (r *redisCounter) IncrementBy(key string, w time.Time, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	k := r.key(key, w)
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.IncrBy(ctx, k, int64(n))
		p.Expire(ctx, k, 3*r.window)
		return nil
	})
	return err
}

func (r *redisCounter) Get(key string, cur, prev time.Time) (int, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	vals, err := r.c.MGet(ctx, r.key(key, cur), r.key(key, prev)).Result()
	if err != nil {
		return 0, 0, err
	}
	n := func(v any) int {
		s, _ := v.(string)
		i, _ := strconv.Atoi(s)
		return i
	}
	return n(vals[0]), n(vals[1]), nil
}

// fallbackCounter counts in Redis while it answers, and in the replica's
// own memory while it does not: a Redis outage makes the budget per
// replica for a while, never refuses service. It leaves Redis alone for
// redisPause after a failure.
type fallbackCounter struct {
	shared  httprate.LimitCounter
	local   httprate.LimitCounter
	metrics *Metrics
	breaker breaker.Breaker
}

const redisPause = 5 * time.Second

func newFallbackCounter(shared, local httprate.LimitCounter, m *Metrics) *fallbackCounter {
	return &fallbackCounter{shared: shared, local: local, metrics: m, breaker: breaker.Breaker{Pause: redisPause, LogEvery: redisPause}}
}

func (f *fallbackCounter) Config(limit int, window time.Duration) {
	f.shared.Config(limit, window)
	f.local.Config(limit, window)
}

// failed notes a Redis failure: counted, logged at most once per pause.
func (f *fallbackCounter) failed(err error) {
	f.metrics.rateFallback()
	if f.breaker.Fail() {
		slog.Warn("rate limiter: Redis does not answer; counting per replica", "err", err, "retry_in", redisPause)
	}
}

func (f *fallbackCounter) Increment(key string, w time.Time) error { return f.IncrementBy(key, w, 1) }

func (f *fallbackCounter) IncrementBy(key string, w time.Time, n int) error {
	if f.breaker.Usable() {
		err := f.shared.IncrementBy(key, w, n)
		if err == nil {
			return nil
		}
		f.failed(err)
	}
	return f.local.IncrementBy(key, w, n)
}

func (f *fallbackCounter) Get(key string, cur, prev time.Time) (int, int, error) {
	if f.breaker.Usable() {
		a, b, err := f.shared.Get(key, cur, prev)
		if err == nil {
			return a, b, nil
		}
		f.failed(err)
	}
	return f.local.Get(key, cur, prev)
}
