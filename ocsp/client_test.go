package ocsp_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/testcerts"
)

func TestClientLocalAndForeign(t *testing.T) {
	ours := newEnv(t, ocsp.Options{})
	foreign := newEnv(t, ocsp.Options{}) // another PKI with its own responder
	ctx := context.Background()
	c := &ocsp.Client{Local: ours.r, Issuers: []*x509.Certificate{foreign.sub2.Cert}}

	r, err := c.Check(ctx, ours.leaf, ours.sub2.Cert, "")
	if err != nil || r.Status != ocsp.Good || r.Source != "local" {
		t.Fatalf("local: %+v, %v", r, err)
	}
	r, err = c.Check(ctx, foreign.leaf, foreign.sub2.Cert, "")
	if err != nil || r.Status != ocsp.Good || r.Source != foreign.url+"/ocsp" {
		t.Fatalf("foreign via AIA: %+v, %v", r, err)
	}
	if r.Signer == nil || r.Signer.Equal(foreign.sub2.Cert) {
		t.Errorf("signer %v, want the delegated responder", r.Signer)
	}
	if r, err = c.Check(ctx, foreign.leaf, foreign.sub2.Cert, ""); err != nil || r.Source != "cache" {
		t.Errorf("second check not cached: %+v, %v", r, err)
	}

	// OCPP OCSPRequestData for the foreign certificate.
	nh, kh, _ := ocsp.IssuerHashes(crypto.SHA384, foreign.sub2.Cert)
	if _, err := foreign.d.CA.Revoke(ctx, "", ca.SerialHex(foreign.leaf.SerialNumber), 1); err != nil {
		t.Fatal(err)
	}
	foreign.r.Invalidate("cpo-sub2", ca.SerialHex(foreign.leaf.SerialNumber))
	data := ocsp.RequestData{HashAlgorithm: "SHA384", IssuerNameHash: hex.EncodeToString(nh), IssuerKeyHash: hex.EncodeToString(kh),
		SerialNumber: strings.ToUpper(foreign.leaf.SerialNumber.Text(16)), ResponderURL: foreign.url + "/ocsp"}
	r, err = c.CheckData(ctx, data)
	if err != nil || r.Status != ocsp.Revoked || r.Reason != 1 {
		t.Fatalf("CheckData: %+v, %v", r, err)
	}

	// Refusals.
	stranger := &ocsp.Client{}
	if _, err := stranger.CheckData(ctx, data); !errors.Is(err, ocsp.ErrUnknownIssuer) {
		t.Errorf("unknown issuer: %v", err)
	}
	bad := data
	bad.HashAlgorithm = "SHA1"
	if _, err := c.CheckData(ctx, bad); err == nil {
		t.Error("SHA1 accepted for OCPP hash data")
	}
	bad = data
	bad.SerialNumber = "-1"
	if _, err := c.CheckData(ctx, bad); err == nil {
		t.Error("bad serial accepted")
	}
	bad = data
	bad.ResponderURL = "file:///etc/passwd"
	if _, err := (&ocsp.Client{Issuers: c.Issuers}).CheckData(ctx, bad); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("file URL: %v", err)
	}
	if _, err := c.Check(ctx, ours.leaf, foreign.sub2.Cert, ""); err == nil {
		t.Error("wrong issuer accepted")
	}
}

// TestClientRejectsForgedResponses: a response signed by a key the issuer
// did not delegate to, or about another serial, or stale, is refused.
func TestClientRejectsForgedResponses(t *testing.T) {
	e := newEnv(t, ocsp.Options{})
	ctx := context.Background()
	pki, _ := testcerts.Generate(1, time.Now())
	impostor, err := ocsp.NewResponseSigner(e.sub2.Cert, pki.Get("secc").Cert, pki.Get("secc").Key)
	if err != nil {
		t.Fatal(err)
	}
	delegated, _ := ocsp.NewResponseSigner(e.sub2.Cert, e.sub2.Cert, e.sub2.Signer)
	now := time.Now()
	for _, tt := range []struct {
		name   string
		signer *ocsp.ResponseSigner
		serial int64
		this   time.Time
	}{
		{"signed by an undelegated key", impostor, 0, now},
		{"about another serial", delegated, 1, now},
		{"expired", delegated, 0, now.Add(-48 * time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			serial := e.leaf.SerialNumber
			if tt.serial != 0 {
				serial = new(big.Int).Add(serial, big.NewInt(1))
			}
			der, err := tt.signer.Sign(ocsp.Template{Hash: crypto.SHA256, Serial: serial, Status: ocsp.Good,
				ThisUpdate: tt.this, NextUpdate: tt.this.Add(24 * time.Hour)}, tt.this)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(der) }))
			defer srv.Close()
			if r, err := (&ocsp.Client{}).Check(ctx, e.leaf, e.sub2.Cert, srv.URL); err == nil {
				t.Errorf("accepted: %+v", r)
			}
		})
	}
	// The URL check can be narrowed, e.g. to an allowlist.
	c := &ocsp.Client{URLAllowed: func(u *url.URL) bool { return u.Host == "ocsp.example.com" }}
	if _, err := c.Check(ctx, e.leaf, e.sub2.Cert, e.url+"/ocsp"); err == nil {
		t.Error("URL outside the allowlist fetched")
	}
}
