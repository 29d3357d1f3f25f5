package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Options configure a Responder. Zero values take the documented defaults.
type Options struct {
	CA    *ca.Service
	Store store.Store
	// DataDir holds the delegated responder keys and certificates
	// (DataDir/ocsp/{ca}.pem and {ca}-{keyid}.key, keys mode 0600).
	DataDir string
	// UseCAKey signs responses with the CA keys instead of delegated
	// responder certificates.
	UseCAKey bool
	// ResponderValidity is the validity of the delegated responder
	// certificates this responder issues (default: the profile's, 30
	// days). Roots about to go offline get the longest, 90 days: a new
	// one takes a key ceremony.
	ResponderValidity policies.Period
	// Validity is nextUpdate - thisUpdate of a response (default 24h).
	Validity time.Duration
	// Refresh is the age at which a response is signed again (default
	// Validity/2), so relying parties always get at least half a validity.
	Refresh time.Duration
	// ValidityByProfile overrides Validity for certificates of a profile
	// (e.g. shorter for iso15118-2/contract); their refresh age keeps the
	// Refresh/Validity ratio.
	ValidityByProfile map[string]time.Duration
	// StatusTTL bounds how long a cached status is served before the store
	// is asked again (default 30s): the backstop should both the revocation
	// feed (RevocationPoll, needs Run) and Redis pub/sub miss a revocation.
	StatusTTL time.Duration
	// MaxAge is the HTTP Cache-Control max-age of responses (default 60s,
	// never past nextUpdate).
	MaxAge time.Duration
	// CacheBytes bounds the in-process response cache (default 64 MiB).
	CacheBytes int64
	Logger     *slog.Logger
	// Registerer receives the responder's metrics (default: none).
	Registerer prometheus.Registerer
	Now        func() time.Time

	// Redis, when set, is the shared tier: responses signed by one replica
	// are served by all, and revocations announced with Revoked or
	// Announce reach every replica through pub/sub.
	Redis       redis.UniversalClient
	RedisPrefix string // default DefaultRedisPrefix
	// OnRevoked is called after a revocation announced through Redis has
	// been applied to this responder's cache.
	OnRevoked func(issuer, serialHex string)

	// RevocationPoll is how often Run reads the store's revocation feed
	// (default 500 ms): a revocation by any process sharing the store
	// reaches this responder within it, with or without Redis.
	RevocationPoll time.Duration

	// PreSignInterval is how often Run walks the store to pre-sign
	// responses (default 5 min; negative disables pre-signing).
	PreSignInterval time.Duration
	// PreSignRate bounds pre-signing in signatures per second (default 200).
	PreSignRate int
	// PreSignHashes are the CertID hashes pre-signed (default SHA-1, the
	// RFC 5019 hash, and SHA-256, OCPP's default).
	PreSignHashes []crypto.Hash
}

// Responder answers OCSP requests for the CAs of a ca.Service.
type Responder struct {
	opts Options
	log  *slog.Logger

	mu      sync.RWMutex
	issuers map[issuerKey]*issuer
	byName  map[string]*issuer

	cache        *memCache
	flight       singleflight.Group
	metrics      *metrics
	cacheControl []string // for responses with more than MaxAge left
	redis        *redisTier

	crlMu      sync.Mutex
	crlDirty   map[string]bool // issuers whose CRL crlLater signs again
	crlRunning bool
	feedMu     sync.Mutex
	feedCursor int64 // last revocation applied from the store's feed

	warnMu sync.Mutex
	warned map[string]time.Time // warnHourly's last line by key
}

// warnHourly logs a warning about a lasting state (an offline CA without
// an imported CRL, say) at most once an hour per key: Reload and the
// CRL refresh find it again every few minutes.
func (r *Responder) warnHourly(key, msg string, args ...any) {
	now := time.Now()
	r.warnMu.Lock()
	if r.warned == nil {
		r.warned = map[string]time.Time{}
	}
	due := now.Sub(r.warned[key]) >= time.Hour // never warned: the zero time
	if due {
		r.warned[key] = now
	}
	r.warnMu.Unlock()
	if due {
		r.log.Warn(msg, args...)
	}
}

type issuer struct {
	name   string
	cert   *x509.Certificate
	signer *ResponseSigner // guarded by Responder.mu
	// names are name and the CAs with the same subject and key (a sub-CA
	// renewed with its key): a CertID cannot tell them apart, so the
	// store is asked under each. Guarded by Responder.mu.
	names []string
}

type metrics struct {
	responses *prometheus.CounterVec // by result: good, revoked, unknown, unauthorized, malformed
	source    *prometheus.CounterVec // by source: cache, store_check, signed
	signed    prometheus.Counter
	cacheSize prometheus.GaugeFunc

	// resolved children, so the hot path does not look labels up
	byStatus                      [3]prometheus.Counter
	unauthorized, malformed       prometheus.Counter
	fromCache, checked, signedSrc prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, cache *memCache) (*metrics, error) {
	m := &metrics{
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_ocsp_responses_total", Help: "OCSP answers by result."}, []string{"result"}),
		source:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_ocsp_response_source_total", Help: "Where successful OCSP answers came from: cache, store_check (cached response re-confirmed by the store) or signed."}, []string{"source"}),
		signed:    prometheus.NewCounter(prometheus.CounterOpts{Name: "pncpki_ocsp_signatures_total", Help: "OCSP responses signed."}),
		cacheSize: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pncpki_ocsp_cache_bytes", Help: "Bytes held by the in-process OCSP response cache."},
			func() float64 { return float64(cache.size()) }),
	}
	m.byStatus = [3]prometheus.Counter{m.responses.WithLabelValues("good"), m.responses.WithLabelValues("revoked"), m.responses.WithLabelValues("unknown")}
	m.unauthorized, m.malformed = m.responses.WithLabelValues("unauthorized"), m.responses.WithLabelValues("malformed")
	m.fromCache, m.checked, m.signedSrc = m.source.WithLabelValues("cache"), m.source.WithLabelValues("store_check"), m.source.WithLabelValues("signed")
	return m, register(reg, m.responses, m.source, m.signed, m.cacheSize)
}

func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// New prepares delegated signers for every CA of opts.CA and returns the
// responder.
func New(ctx context.Context, opts Options) (r *Responder, err error) {
	if opts.CA == nil || opts.Store == nil {
		return nil, errors.New("ocsp: CA and Store are required")
	}
	if opts.Validity <= 0 {
		opts.Validity = 24 * time.Hour
	}
	if opts.Refresh <= 0 || opts.Refresh > opts.Validity {
		opts.Refresh = opts.Validity / 2
	}
	if opts.StatusTTL <= 0 {
		opts.StatusTTL = 30 * time.Second
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = time.Minute
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RevocationPoll <= 0 {
		opts.RevocationPoll = 500 * time.Millisecond
	}
	if opts.PreSignInterval == 0 {
		opts.PreSignInterval = 5 * time.Minute
	}
	if opts.PreSignRate <= 0 {
		opts.PreSignRate = 200
	}
	if opts.PreSignHashes == nil {
		opts.PreSignHashes = []crypto.Hash{crypto.SHA1, crypto.SHA256}
	}
	r = &Responder{opts: opts, log: opts.Logger, cache: newMemCache(opts.CacheBytes),
		cacheControl: []string{"max-age=" + strconv.Itoa(int(opts.MaxAge.Seconds())) + ", public, no-transform, must-revalidate"}}
	if r.metrics, err = newMetrics(opts.Registerer, r.cache); err != nil {
		return nil, err
	}
	if err := register(opts.Registerer, newLifecycle(r)); err != nil {
		return nil, err
	}
	if opts.Redis != nil {
		if r.opts.RedisPrefix == "" {
			r.opts.RedisPrefix = DefaultRedisPrefix
		}
		if r.redis, err = newRedisTier(opts.Redis, r.opts.RedisPrefix, opts.Registerer); err != nil {
			return nil, err
		}
	}
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	// Revocations before now are in the store already; follow from here.
	if r.feedCursor, err = opts.Store.RevocationCursor(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// issuerKey identifies an issuer by a CertID's hash algorithm and hashes.
type issuerKey struct {
	hash          crypto.Hash
	name, keyHash [64]byte
}

func newIssuerKey(h crypto.Hash, nameHash, keyHash []byte) issuerKey {
	k := issuerKey{hash: h}
	copy(k.name[:], nameHash)
	copy(k.keyHash[:], keyHash)
	return k
}

// Reload picks up CAs added since the last call and rotates delegated
// responder certificates that are due.
func (r *Responder) Reload(ctx context.Context) error {
	issuers := map[issuerKey]*issuer{}
	byName := map[string]*issuer{}
	for _, a := range r.opts.CA.Authorities() {
		s, err := r.delegated(ctx, a)
		if errors.Is(err, errOffline) {
			r.warnHourly("offline-ocsp/"+a.Name, "no OCSP answers for the certificates of an offline CA", "ca", a.Name, "err", err)
			continue
		} else if err != nil {
			return fmt.Errorf("OCSP signer for %s: %w", a.Name, err)
		}
		// Keep the issuer of an unchanged CA: cached responses are keyed
		// by it and stay valid.
		r.mu.Lock()
		is := r.byName[a.Name]
		if is == nil || !bytes.Equal(is.cert.Raw, a.Cert.Raw) {
			is = &issuer{name: a.Name, cert: a.Cert}
		}
		is.signer, is.names = s, []string{a.Name}
		r.mu.Unlock()
		byName[a.Name] = is
		for _, h := range Hashes {
			nh, kh, err := IssuerHashes(h, a.Cert)
			if err != nil {
				return err
			}
			k := newIssuerKey(h, nh, kh)
			if twin := issuers[k]; twin != nil && twin != is {
				// Renewed with its key: the first keeps answering, and
				// asks the store under both names.
				r.mu.Lock()
				if !slices.Contains(twin.names, a.Name) {
					twin.names = append(twin.names, a.Name)
				}
				r.mu.Unlock()
				continue
			}
			issuers[k] = is
		}
	}
	r.mu.Lock()
	r.issuers, r.byName = issuers, byName
	r.mu.Unlock()
	return nil
}

// Issuer returns the CA name a request is for, or "" if not ours.
func (r *Responder) Issuer(req *Request) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if is := r.issuers[newIssuerKey(req.Hash, req.IssuerNameHash, req.IssuerKeyHash)]; is != nil {
		return is.name
	}
	return ""
}

// Answer is a successful OCSP response with what HTTP caching needs.
type Answer struct {
	DER        []byte
	ETag       string
	Status     int
	ThisUpdate time.Time
	NextUpdate time.Time
	// Cacheable is false for nonce responses, which are for one request.
	Cacheable bool
}

// ErrUnauthorized means the request names an issuer this responder does not
// serve.
var ErrUnauthorized = errors.New("ocsp: issuer not served here")

// Respond answers one parsed request. The answer is shared: do not modify.
func (r *Responder) Respond(ctx context.Context, req *Request) (*Answer, error) {
	e, err := r.respond(ctx, req)
	if err != nil {
		return nil, err
	}
	return &e.Answer, nil
}

func (r *Responder) respond(ctx context.Context, req *Request) (*entry, error) {
	r.mu.RLock()
	is := r.issuers[newIssuerKey(req.Hash, req.IssuerNameHash, req.IssuerKeyHash)]
	var names []string
	if is != nil {
		names = is.names
	}
	r.mu.RUnlock()
	if is == nil {
		r.metrics.unauthorized.Inc()
		return nil, ErrUnauthorized
	}
	now := r.opts.Now()
	if req.Nonce != nil {
		st, err := r.status(ctx, names, req.Serial)
		if err != nil {
			return nil, err
		}
		e, err := r.sign(is, req.Hash, req.Serial, st, req.Nonce, now)
		if err != nil {
			return nil, err
		}
		r.count(e.Status, r.metrics.signedSrc)
		return e, nil
	}
	key := newCacheKey(is, req.Hash, req.Serial)
	if e := r.cache.get(key); e != nil && now.Before(r.refreshAt(e)) {
		if now.Sub(e.checked) < r.opts.StatusTTL {
			r.count(e.Status, r.metrics.fromCache)
			return e, nil
		}
		gen := r.cache.generation()
		st, err := r.status(ctx, names, req.Serial)
		if err != nil {
			return nil, err
		}
		if st.same(e) {
			fresh := *e
			fresh.checked = now
			r.cache.putIf(key, &fresh, gen)
			r.count(e.Status, r.metrics.checked)
			return &fresh, nil
		}
	}
	v, err, _ := r.flight.Do(fmt.Sprintf("%s/%d/%x", is.name, req.Hash, req.Serial), func() (any, error) {
		// Statuses read after this point may be cached; a revocation
		// applied meanwhile bumps the generation and keeps them out.
		gen := r.cache.generation()
		if e := r.fromRedis(ctx, is, req.Hash, req.Serial); e != nil && now.Before(r.refreshAt(e)) {
			st := certStatus{status: e.Status, reason: e.reason, revokedAt: e.revokedAt}
			if now.Sub(e.checked) >= r.opts.StatusTTL {
				var err error
				if st, err = r.status(ctx, names, req.Serial); err != nil {
					return nil, err
				}
				e.checked = now
			}
			if st.same(e) {
				r.cache.putIf(key, e, gen)
				return e, nil
			}
		}
		st, err := r.status(ctx, names, req.Serial)
		if err != nil {
			return nil, err
		}
		e, err := r.sign(is, req.Hash, req.Serial, st, nil, now)
		if err != nil {
			return nil, err
		}
		r.cache.putIf(key, e, gen)
		r.toRedis(ctx, is, req.Hash, req.Serial, e)
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	e := v.(*entry)
	r.count(e.Status, r.metrics.signedSrc)
	return e, nil
}

func (r *Responder) count(status int, source prometheus.Counter) {
	r.metrics.byStatus[status].Inc()
	source.Inc()
}

// certStatus is what the store says about a serial.
type certStatus struct {
	status    int
	revokedAt time.Time
	reason    int
	profile   string // "" for unknown certificates
}

// refreshAt is when a response is due to be signed again.
func (r *Responder) refreshAt(e *entry) time.Time {
	return e.ThisUpdate.Add(time.Duration(float64(e.NextUpdate.Sub(e.ThisUpdate)) * float64(r.opts.Refresh) / float64(r.opts.Validity)))
}

// validity is nextUpdate - thisUpdate for a certificate's profile.
func (r *Responder) validity(profile string) time.Duration {
	if v, ok := r.opts.ValidityByProfile[profile]; ok && v > 0 {
		return v
	}
	return r.opts.Validity
}

func (s certStatus) same(e *entry) bool {
	return s.status == e.Status && s.reason == e.reason && s.revokedAt.Equal(e.revokedAt)
}

func (r *Responder) status(ctx context.Context, names []string, serial *big.Int) (certStatus, error) {
	var c *store.Certificate
	err := store.ErrNotFound
	for _, issuer := range names {
		if c, err = r.opts.Store.Certificate(ctx, issuer, serial.Text(16)); !errors.Is(err, store.ErrNotFound) {
			break
		}
	}
	issuer := names[0]
	switch {
	case errors.Is(err, store.ErrNotFound):
		return certStatus{status: Unknown}, nil
	case err != nil:
		return certStatus{}, fmt.Errorf("ocsp status %s/%x: %w", issuer, serial, err)
	case c.Revoked():
		return certStatus{status: Revoked, revokedAt: c.RevokedAt, reason: c.Reason, profile: c.Profile}, nil
	}
	return certStatus{status: Good, profile: c.Profile}, nil
}

func (r *Responder) sign(is *issuer, h crypto.Hash, serial *big.Int, st certStatus, nonce []byte, now time.Time) (*entry, error) {
	// thisUpdate a little in the past absorbs relying parties' clock skew,
	// but not before a revocation the answer reports: a status cannot be
	// known to be correct before it came about.
	this := now.Add(-time.Minute).UTC().Truncate(time.Second)
	if st.status == Revoked && st.revokedAt.After(this) {
		this = st.revokedAt.UTC().Truncate(time.Second)
	}
	next := this.Add(r.validity(st.profile))
	r.mu.RLock()
	signer := is.signer
	r.mu.RUnlock()
	der, err := signer.Sign(Template{
		Hash: h, Serial: serial, Status: st.status, RevokedAt: st.revokedAt, Reason: st.reason,
		ThisUpdate: this, NextUpdate: next, Nonce: nonce,
	}, now)
	if err != nil {
		return nil, err
	}
	r.metrics.signed.Inc()
	e := r.newEntry(der, st, this, next, nonce == nil)
	e.checked = now
	return e, nil
}

// newEntry wraps a signed response with its formatted headers.
func (r *Responder) newEntry(der []byte, st certStatus, this, next time.Time, cacheable bool) *entry {
	sum := sha256.Sum256(der)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return &entry{
		Answer: Answer{DER: der, ETag: etag, Status: st.status, ThisUpdate: this, NextUpdate: next, Cacheable: cacheable},
		reason: st.reason, revokedAt: st.revokedAt,
		hdrLastModified: []string{this.Format(http.TimeFormat)},
		hdrExpires:      []string{next.Format(http.TimeFormat)},
		hdrETag:         []string{etag},
		hdrLength:       []string{strconv.Itoa(len(der))},
	}
}

// Invalidate drops the cached responses of a certificate, for every hash,
// so that the next request reads the store (after a revocation).
func (r *Responder) Invalidate(issuer, serialHex string) {
	serial, ok := new(big.Int).SetString(strings.TrimPrefix(serialHex, "0x"), 16)
	if !ok || serial.Sign() <= 0 || serial.BitLen() > 160 {
		return
	}
	r.mu.RLock()
	is := r.byName[issuer]
	r.mu.RUnlock()
	if is == nil {
		return
	}
	keys := make([]cacheKey, 0, len(Hashes))
	for _, h := range Hashes {
		keys = append(keys, newCacheKey(is, h, serial))
	}
	r.cache.delete(keys...)
}
