package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
)

// BenchmarkSignCSRREST is SignCSR over HTTPS/REST in process: TLS,
// transcoding, auth, issuance and the durable store, 16 clients.
func BenchmarkSignCSRREST(b *testing.B) {
	e := newEnv(b, "")
	body, _ := json.Marshal(map[string]any{"profile": policies.ISO2SECC, "csr": goCSR(b, "DE*ABC*E1")})
	client := e.srv.Client()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/certificates", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.tokens["cpo1"])
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("HTTP %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}

func goCSR(tb testing.TB, cn string) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Name(cn, "", "", "CPO")}, key)
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// BenchmarkGet15118EVCertificate is the vehicle's installation request
// through the OCPP API in process: REST over HTTPS, auth, the bridge, the
// contract service and the durable store, 8 clients; every request a new
// vehicle signature.
func BenchmarkGet15118EVCertificate(b *testing.B) {
	e := newEnv(b, "")
	bodies := evRequests(b, e, 512)
	e.installer.Window = time.Nanosecond // no repeated answers
	client := e.srv.Client()
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/ocpp/CS-1/requests", bytes.NewReader(bodies[next.Add(1)%int64(len(bodies))]))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.tokens["cpo1"])
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Contains(msg, []byte(`\"Accepted\"`)) {
				b.Errorf("HTTP %d %s", resp.StatusCode, msg)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "installs/s")
}

// evRequests registers station CS-1 of cpo1 and a contract for the test
// vehicle, and prepares n REST bodies of its installation request.
func evRequests(tb testing.TB, e *env, n int) [][]byte {
	ctx := context.Background()
	now := time.Now()
	if err := e.d.Store.PutStation(ctx, &store.Station{ID: "CS-1", Tenant: "cpo1", SerialNumber: "SN-1", OCPPVersion: "2.0.1", CreatedAt: now, UpdatedAt: now}); err != nil {
		tb.Fatal(err)
	}
	if _, err := e.installer.Pool.Put(ctx, "emsp1", store.Contract{EMAID: "DE8AAC12345678", PCID: testcerts.PCID, Default: true}); err != nil {
		tb.Fatal(err)
	}
	v2g, _ := e.d.CA.Authority("v2g-root")
	ev := &contract.EV{ProvisioningCert: e.oem.Get("oem-prov").Cert, ProvisioningKey: e.oem.Get("oem-prov").Key, Roots: []*x509.Certificate{v2g.Cert}}
	out := make([][]byte, n)
	for i := range out {
		r, err := ev.InstallationRequest()
		if err != nil {
			tb.Fatal(err)
		}
		payload, _ := json.Marshal(ocppsec.Get15118EVCertificateRequest{ISO15118SchemaVersion: ocppsec.ISO15118v2Schema, Action: "Install", EXIRequest: base64.StdEncoding.EncodeToString(r)})
		out[i], _ = json.Marshal(map[string]string{"ocppVersion": "2.0.1", "action": "Get15118EVCertificate", "payload": string(payload)})
	}
	return out
}
