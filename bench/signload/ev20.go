package main

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/testcerts"
)

// The ev20 mode drives ISO 15118-20 installations the same way, over
// OCPP 2.1: every request a V2G session of its own (its first contract,
// a new signature), for the vehicle of testcerts' -20 PKI of -variant.

// ev20Vehicle returns the simulated -20 vehicle of seed and variant.
func ev20Vehicle(seed uint64, variant string) (*contract.EV20, *testcerts.PKI) {
	generate := testcerts.Generate20
	switch variant {
	case "p521":
	case "ed448":
		generate = testcerts.Generate20Ed448
	default:
		log.Fatalf("-variant %q: want p521 or ed448", variant)
	}
	pki, err := generate(seed, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	p := pki.Get("oem-prov")
	chain := pki.Chain("oem-prov")
	return &contract.EV20{ProvisioningChain: append([]*x509.Certificate{p.Cert}, chain[:len(chain)-1]...),
		ProvisioningKey: p.Signer(), X448Key: p.X448Key, MaxContracts: 1}, pki
}

// ev20Setup writes the OEM root of the vehicle (a trust anchor of pncd)
// and prints its PCID: a -20 vehicle sends its sub-CAs itself.
func ev20Setup(dir string, seed uint64, variant string) {
	ev, pki := ev20Vehicle(seed, variant)
	path := filepath.Join(dir, "anchors", "OEMRootCertificate", "oem-root.pem")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, datadir.EncodePEM(pki.Get("oem-root").Cert), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.ProvisioningChain[0].Subject.CommonName)
}

// ev20Bodies prepares n HandleRequest bodies of OCPP 2.1
// Get15118EVCertificate with a -20 request each.
func ev20Bodies(base, token, station string, seed uint64, variant string, n int) [][]byte {
	proto, _ := ev20Vehicle(seed, variant)
	roots := vehicleRoots(base, token)
	one := int32(1)
	return bodies(n, func() []byte {
		ev := *proto
		ev.Roots = roots
		ev.SessionID = make([]byte, 8)
		rand.Read(ev.SessionID)
		exiReq, err := ev.InstallationRequest()
		if err != nil {
			log.Fatal(err)
		}
		payload, _ := json.Marshal(ocppsec.Get15118EVCertificateRequest{ISO15118SchemaVersion: contract.ISO15118v20Schema,
			Action: "Install", EXIRequest: base64.StdEncoding.EncodeToString(exiReq), MaximumContractCertificateChains: &one})
		out, _ := json.Marshal(map[string]string{"stationId": station, "ocppVersion": "2.1",
			"action": "Get15118EVCertificate", "payload": string(payload)})
		return out
	})
}
