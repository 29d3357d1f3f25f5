package ocsp_test

import (
	"context"
	"crypto"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/ocsp"
)

func TestPreSign(t *testing.T) {
	for _, withRedis := range []bool{false, true} {
		t.Run(fmt.Sprintf("redis=%v", withRedis), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			opts := ocsp.Options{Registerer: reg, PreSignRate: 100000}
			if withRedis {
				opts.Redis = testRedis(t)
				opts.RedisPrefix = "pncpki-test:" + filepath.Base(t.TempDir()) + ":"
			}
			e := newEnv(t, opts)
			ctx := context.Background()
			for i := range 5 {
				e.issue(t, fmt.Sprintf("DE*ABC*E%d", 100+i))
			}
			// Live certificates: the 6 SECC leaves, the CPS leaf, the sub-CAs
			// under their parents, and the delegated responder certificates.
			live := 0
			for _, a := range e.d.CA.Authorities() {
				page, err := e.d.Store.Live(ctx, a.Name, time.Now(), "", 1000)
				if err != nil {
					t.Fatal(err)
				}
				live += len(page)
			}
			n, err := e.r.PreSign(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != 2*live {
				t.Errorf("signed %d, want %d (SHA-1 and SHA-256 for %d certificates)", n, 2*live, live)
			}
			if n, _ := e.r.PreSign(ctx); n != 0 {
				t.Errorf("second pass signed %d, want 0", n)
			}
			before := metric(t, reg, "pncpki_ocsp_signatures_total")
			for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
				if st, _ := statusOf(t, e.r, e, h); st != ocsp.Good {
					t.Errorf("status %d", st)
				}
			}
			if after := metric(t, reg, "pncpki_ocsp_signatures_total"); after != before {
				t.Errorf("answering pre-signed certificates signed %v responses", after-before)
			}
			if _, err := e.d.Store.Revoke(ctx, "cpo-sub2", ca.SerialHex(e.leaf.SerialNumber), 1, time.Now()); err != nil {
				t.Fatal(err)
			}
			if n, _ := e.r.PreSign(ctx); n != 2 {
				t.Errorf("after a revocation the pass signed %d, want 2", n)
			}
		})
	}
}
