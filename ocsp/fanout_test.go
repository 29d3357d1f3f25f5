package ocsp_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/redistest"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
)

// BenchmarkRevocationFanout measures how long a revocation takes to reach
// a second replica, from the revoking call's return until the replica
// answers revoked: through Redis pub/sub, and without Redis through the
// store's revocation feed (polled every 500 ms by default). It reports the
// median and the 99th percentile in milliseconds.
func BenchmarkRevocationFanout(b *testing.B) {
	for _, withRedis := range []bool{true, false} {
		name := "store-feed"
		if withRedis {
			name = "redis"
		}
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := ocsp.Options{StatusTTL: time.Hour}
			if withRedis {
				opts.Redis = redistest.Client(b)
				opts.RedisPrefix = "pncpki-bench:" + filepath.Base(b.TempDir()) + ":"
			}
			e := newEnv(b, opts)
			other := replica(b, e, opts)
			go e.r.Run(ctx)
			go other.Run(ctx)
			for withRedis && !other.Subscribed() {
				time.Sleep(5 * time.Millisecond)
			}
			var took []time.Duration
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				iss, err := e.d.CA.IssueForKey(ctx, policies.ISO2SECC, "cpo-sub2", &key.PublicKey, policies.Subject{CommonName: fmt.Sprintf("DE*ABC*E%d", i+100)}, policies.Period{})
				if err != nil {
					b.Fatal(err)
				}
				cert := iss.Cert()
				req := mustParse(b, e.request(b, crypto.SHA256, cert, nil))
				status := func() int {
					ans, err := other.Respond(ctx, req)
					if err != nil {
						b.Fatal(err)
					}
					r, err := xocsp.ParseResponseForCert(ans.DER, cert, e.sub2.Cert)
					if err != nil {
						b.Fatal(err)
					}
					return r.Status
				}
				if status() != xocsp.Good { // cached at the other replica
					b.Fatal("not good before the revocation")
				}
				if !withRedis {
					// Revocations come at any point of the feed's poll,
					// not right after one, as a loop would make them.
					time.Sleep(time.Duration(mrand.Int64N(int64(500 * time.Millisecond))))
				}
				b.StartTimer()
				if _, err := e.d.CA.Revoke(ctx, "cpo-sub2", ca.SerialHex(cert.SerialNumber), 1); err != nil {
					b.Fatal(err)
				}
				e.r.Revoked(ctx, "cpo-sub2", ca.SerialHex(cert.SerialNumber))
				start := time.Now()
				for status() != xocsp.Revoked {
					if time.Since(start) > 10*time.Second {
						b.Fatal("revocation not seen within 10 s")
					}
					time.Sleep(time.Millisecond / 2)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[(len(took)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkRevocationBurst measures the fan-out of revocations that come
// in a burst (an operator revoking a station's certificates, a compromised
// sub-CA's leaves): 25 revocations back to back, each timed from its
// announcement until the other replica has applied it. Work done per
// message on the receiving side (signing a CRL inline did) makes later
// messages queue.
func BenchmarkRevocationBurst(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := redistest.Client(b)
	prefix := "pncpki-bench:" + filepath.Base(b.TempDir()) + ":"
	e := newEnv(b, ocsp.Options{Redis: rdb, RedisPrefix: prefix, StatusTTL: time.Hour})
	type arrival struct {
		serial string
		at     time.Time
	}
	got := make(chan arrival, 1024)
	other := replica(b, e, ocsp.Options{Redis: rdb, RedisPrefix: prefix, StatusTTL: time.Hour,
		OnRevoked: func(_, serial string) { got <- arrival{serial, time.Now()} }})
	go other.Run(ctx)
	for !other.Subscribed() {
		time.Sleep(5 * time.Millisecond)
	}
	const burst = 25
	var took []time.Duration
	for i := range b.N {
		b.StopTimer()
		serials := make([]string, burst)
		for j := range burst {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			iss, err := e.d.CA.IssueForKey(ctx, policies.ISO2SECC, "cpo-sub2", &key.PublicKey, policies.Subject{CommonName: fmt.Sprintf("DE*ABC*E%d", i*burst+j+1)}, policies.Period{})
			if err != nil {
				b.Fatal(err)
			}
			serials[j] = iss.Record.Serial
			if _, err := e.d.CA.Revoke(ctx, "cpo-sub2", serials[j], 1); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		sent := map[string]time.Time{}
		for _, s := range serials {
			sent[s] = time.Now()
			if err := ocsp.Announce(ctx, rdb, prefix, "cpo-sub2", s); err != nil {
				b.Fatal(err)
			}
		}
		for range burst {
			select {
			case a := <-got:
				took = append(took, a.at.Sub(sent[a.serial]))
			case <-time.After(30 * time.Second):
				b.Fatal("a revocation of the burst did not arrive")
			}
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[(len(took)*99)/100].Microseconds())/1000, "p99-ms")
}
