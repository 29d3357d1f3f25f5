package ocsp_test

import (
	"context"
	"crypto"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/internal/redistest"
	"github.com/pncpki/pncpki/ocsp"
)

// testRedis connects to PNCPKI_TEST_REDIS, or skips.
func testRedis(t *testing.T) *redis.Client { return redistest.Client(t) }

// replica is a second responder on the same data directory (same SQLite
// file and keys), as another pncd process would be.
func replica(t testing.TB, e *env, opts ocsp.Options) *ocsp.Responder {
	t.Helper()
	d, err := datadir.Open(context.Background(), e.d.Path, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	opts.CA, opts.Store, opts.DataDir = d.CA, d.Store, d.Path
	r, err := ocsp.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func statusOf(t *testing.T, r *ocsp.Responder, e *env, h crypto.Hash) (int, *xocsp.Response) {
	t.Helper()
	ans, err := r.Respond(context.Background(), mustParse(t, e.request(t, h, e.leaf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := xocsp.ParseResponseForCert(ans.DER, e.leaf, e.sub2.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status, resp
}

func TestRedisSharedTierAndPubSub(t *testing.T) {
	rdb := testRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := "pncpki-test:" + filepath.Base(t.TempDir()) + ":"
	received := make(chan time.Time, 4)
	regB := prometheus.NewRegistry()
	// StatusTTL of an hour: only pub/sub can make B see the revocation.
	e := newEnv(t, ocsp.Options{Redis: rdb, RedisPrefix: prefix, StatusTTL: time.Hour})
	b := replica(t, e, ocsp.Options{Redis: rdb, RedisPrefix: prefix, StatusTTL: time.Hour, Registerer: regB,
		OnRevoked: func(string, string) { received <- time.Now() }})
	go b.Run(ctx)
	go e.r.Run(ctx)

	// A signs; B serves A's response from Redis without signing.
	_, fromA := statusOf(t, e.r, e, crypto.SHA256)
	_, fromB := statusOf(t, b, e, crypto.SHA256)
	if !fromA.ProducedAt.Equal(fromB.ProducedAt) || fromA.Status != xocsp.Good {
		t.Errorf("B signed its own response instead of sharing A's")
	}
	if n := metric(t, regB, "pncpki_ocsp_redis_hits_total"); n != 1 {
		t.Errorf("B's Redis hits = %v", n)
	}

	// Wait until B's subscription is live before announcing.
	deadline := time.Now().Add(10 * time.Second)
	for !b.Subscribed() {
		if time.Now().After(deadline) {
			t.Fatal("B never subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.d.CA.Revoke(ctx, "cpo-sub2", ca.SerialHex(e.leaf.SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := e.r.Revoked(ctx, "cpo-sub2", ca.SerialHex(e.leaf.SerialNumber)); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-received:
		t.Logf("revocation reached replica B after %v", at.Sub(sent))
	case <-time.After(10 * time.Second):
		t.Fatal("revocation not received through pub/sub within 10 s")
	}
	if st, _ := statusOf(t, b, e, crypto.SHA256); st != xocsp.Revoked {
		t.Errorf("B answers %d after the revocation message", st)
	}
	if st, _ := statusOf(t, e.r, e, crypto.SHA1); st != xocsp.Revoked {
		t.Errorf("A answers %d", st)
	}
}

// metric returns the value of a counter or gauge without labels.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestRedisUnreachable: with Redis at a closed port both replicas answer
// from the store, count the failures, a revocation's announcement does not
// fail, and the revocation shows within StatusTTL.
func TestRedisUnreachable(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer dead.Close()
	reg := prometheus.NewRegistry()
	e := newEnv(t, ocsp.Options{Redis: dead, StatusTTL: 100 * time.Millisecond, Registerer: reg})
	b := replica(t, e, ocsp.Options{Redis: dead, StatusTTL: 100 * time.Millisecond})
	for _, r := range []*ocsp.Responder{e.r, b} {
		if st, _ := statusOf(t, r, e, crypto.SHA256); st != xocsp.Good {
			t.Fatalf("status %d without Redis", st)
		}
	}
	if n := metric(t, reg, "pncpki_ocsp_redis_errors_total"); n < 1 {
		t.Errorf("Redis errors not counted: %v", n)
	}
	if up := metric(t, reg, "pncpki_ocsp_redis_up"); up != 0 {
		t.Errorf("redis_up = %v", up)
	}
	if _, err := e.d.CA.Revoke(context.Background(), "cpo-sub2", ca.SerialHex(e.leaf.SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	// The revocation is durable: a dead Redis does not hold up or fail
	// its announcement (the store carries it to every replica).
	if err := e.r.Revoked(context.Background(), "cpo-sub2", ca.SerialHex(e.leaf.SerialNumber)); err != nil {
		t.Errorf("announcing through a dead Redis: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, r := range []*ocsp.Responder{e.r, b} {
		for {
			st, _ := statusOf(t, r, e, crypto.SHA256)
			if st == xocsp.Revoked {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("revocation not visible within StatusTTL without Redis")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
