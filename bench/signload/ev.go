package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/testcerts"
)

// The ev mode drives Get15118EVCertificate through pncd's OCPP API as a
// CSMS forwards it: every request a vehicle's new signature (no repeated
// answers). The vehicle is testcerts' OEM provisioning certificate of
// -seed; evSetup writes what pncd must know of it.

// evVehicle returns the simulated vehicle of seed.
func evVehicle(seed uint64) (*contract.EV, *testcerts.PKI) {
	pki, err := testcerts.Generate(seed, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	p := pki.Get("oem-prov")
	return &contract.EV{ProvisioningCert: p.Cert, ProvisioningKey: p.Key}, pki
}

// evSetup writes the OEM root (a trust anchor of pncd) and the
// provisioning certificate with its sub-CAs (for the provisioning pool),
// and prints the PCID.
func evSetup(dir string, seed uint64) {
	ev, pki := evVehicle(seed)
	write := func(name string, certs ...*x509.Certificate) {
		var b strings.Builder
		for _, c := range certs {
			b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	write("anchors/OEMRootCertificate/oem-root.pem", pki.Get("oem-root").Cert)
	chain := pki.Chain("oem-prov")
	write("prov.pem", append([]*x509.Certificate{ev.ProvisioningCert}, chain[:len(chain)-1]...)...)
	fmt.Println(ev.ProvisioningCert.Subject.CommonName)
}

// evBodies prepares n HandleRequest bodies (Connect JSON), on every CPU;
// the vehicle lists pncd's V2G and MO roots, read from base/v1/trust-anchors.
func evBodies(base, token, station string, seed uint64, n int) [][]byte {
	ev, _ := evVehicle(seed)
	ev.Roots = vehicleRoots(base, token)
	return bodies(n, func() []byte {
		exiReq, err := ev.InstallationRequest()
		if err != nil {
			log.Fatal(err)
		}
		payload, _ := json.Marshal(ocppsec.Get15118EVCertificateRequest{ISO15118SchemaVersion: ocppsec.ISO15118v2Schema,
			Action: "Install", EXIRequest: base64.StdEncoding.EncodeToString(exiReq)})
		out, _ := json.Marshal(map[string]string{"stationId": station, "ocppVersion": "2.0.1",
			"action": "Get15118EVCertificate", "payload": string(payload)})
		return out
	})
}

// bodies makes n request bodies with body on every CPU.
func bodies(n int, body func() []byte) [][]byte {
	out := make([][]byte, n)
	var wg sync.WaitGroup
	workers := runtime.NumCPU()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				out[i] = body()
			}
		}()
	}
	wg.Wait()
	return out
}

// vehicleRoots are the V2G and MO trust anchors of the pncd at base.
func vehicleRoots(base, token string) []*x509.Certificate {
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/trust-anchors", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback benchmark
	resp, err := c.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	var anchors struct {
		Anchors []struct{ Use, Pem string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&anchors); err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	var roots []*x509.Certificate
	for _, a := range anchors.Anchors {
		if a.Use == string(ocppsec.UseV2G) || a.Use == string(ocppsec.UseMO) {
			cs, err := datadir.ParseCertificates([]byte(a.Pem))
			if err != nil {
				log.Fatal(err)
			}
			roots = append(roots, cs...)
		}
	}
	return roots
}

// evCheck says whether a HandleRequest answer carries an accepted
// installation.
func evCheck(msg []byte) error {
	var r struct{ Payload string }
	if err := json.Unmarshal(msg, &r); err != nil {
		return err
	}
	var p ocppsec.Get15118EVCertificateResponse
	if err := json.Unmarshal([]byte(r.Payload), &p); err != nil {
		return err
	}
	if p.Status != "Accepted" {
		return fmt.Errorf("%s %+v", p.Status, p.StatusInfo)
	}
	return nil
}

// stageMetrics reads pncd's per-stage seconds and successful
// installations of one variant (the metrics' variant label) from /metrics.
func stageMetrics(base, variant string) (map[string]float64, float64) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback benchmark
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	stages := map[string]float64{}
	var ok float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		name, value, found := strings.Cut(line, " ")
		if !found {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		if !strings.Contains(name, `variant="`+variant+`"`) {
			continue
		}
		switch {
		case strings.HasPrefix(name, `pncpki_contract_stage_seconds_total{stage="`):
			stage, _, _ := strings.Cut(strings.TrimPrefix(name, `pncpki_contract_stage_seconds_total{stage="`), `"`)
			stages[stage] = v
		case strings.HasPrefix(name, "pncpki_contract_installations_total{") && strings.Contains(name, `result="OK"`):
			ok += v
		}
	}
	return stages, ok
}

// printStages prints the mean of each stage between two scrapes.
func printStages(s0 map[string]float64, ok0 float64, s1 map[string]float64, ok1 float64) {
	n := ok1 - ok0
	if n <= 0 {
		fmt.Println("stages -")
		return
	}
	var parts []string
	for _, name := range []string{"decode", "verify", "keygen", "issue", "store", "encrypt", "sign", "encode"} {
		parts = append(parts, fmt.Sprintf("%s=%.0f", name, (s1[name]-s0[name])/n*1e6))
	}
	fmt.Println("stages " + strings.Join(parts, " "))
}
