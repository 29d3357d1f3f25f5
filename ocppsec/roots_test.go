package ocppsec

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/policies"
)

func TestRootSync(t *testing.T) {
	e := newBridgeEnv(t)
	ctx := context.Background()
	other := newBridgeEnv(t)
	v2g, mo, csms := e.b.Anchors[UseV2G][0], e.b.Anchors[UseMO][0], e.b.Anchors[UseCSMS][0]
	foreignMO := other.b.Anchors[UseMO][0]
	calls := e.b.RootSyncCalls(OCPP201)
	if len(calls) != 1 || fmt.Sprint(calls[0].Payload.(*GetInstalledCertificateIdsRequest).CertificateType) != "[CSMSRootCertificate MORootCertificate ManufacturerRootCertificate V2GRootCertificate]" {
		t.Fatalf("2.0.1 sync calls %+v", calls)
	}
	e.schema(t, OCPP201, "GetInstalledCertificateIds", false, calls[0].Payload)
	v2gHash, _ := HashDataOf(v2g, v2g, "SHA384")
	foreignHash, _ := HashDataOf(foreignMO, foreignMO, "SHA256")
	answer := GetInstalledCertificateIdsResponse{Status: "Accepted", CertificateHashDataChain: []CertificateHashDataChain{
		{CertificateType: "V2GRootCertificate", CertificateHashData: v2gHash},
		{CertificateType: "MORootCertificate", CertificateHashData: foreignHash},
	}}
	follow, err := e.b.HandleResult(ctx, "CS-1", OCPP201, calls[0], "", mustJSON(t, answer))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range follow {
		e.schema(t, OCPP201, c.Action, false, c.Payload)
		switch p := c.Payload.(type) {
		case *InstallCertificateRequest:
			certs, err := ParsePEMChain([]byte(p.Certificate))
			if err != nil || IsRoot(certs[0]) != nil {
				t.Errorf("InstallCertificate of a non-root: %v", err)
			}
			want := map[string]bool{"MORootCertificate": certs[0].Equal(mo), "CSMSRootCertificate": certs[0].Equal(csms)}
			if !want[p.CertificateType] {
				t.Errorf("InstallCertificate %s of %s", p.CertificateType, certs[0].Subject)
			}
			got = append(got, "install "+p.CertificateType)
		case *DeleteCertificateRequest:
			got = append(got, "delete "+p.CertificateHashData.SerialNumber)
		}
	}
	if fmt.Sprint(got) != "[install CSMSRootCertificate install MORootCertificate]" {
		t.Errorf("follow-up %v", got)
	}
	e.b.Policy.DeleteUnknownRoots = true
	follow, _ = e.b.HandleResult(ctx, "CS-1", OCPP201, calls[0], "", mustJSON(t, answer))
	deletes := 0
	for _, c := range follow {
		if d, ok := c.Payload.(*DeleteCertificateRequest); ok {
			deletes++
			if !d.CertificateHashData.Same(foreignHash) {
				t.Errorf("deletes %+v, want the foreign MO root", d.CertificateHashData)
			}
		}
	}
	if deletes != 1 {
		t.Errorf("%d deletes, want 1", deletes)
	}

	// OCPP 1.6: one request per type, CentralSystemRootCertificate; the
	// Plug and Charge roots through the OCA DataTransfer.
	calls16 := e.b.RootSyncCalls(OCPP16)
	if len(calls16) != 3 || calls16[2].Action != "DataTransfer" {
		t.Fatalf("1.6 sync calls %+v", calls16)
	}
	for _, c := range calls16 {
		e.schema(t, OCPP16, c.Action, false, c.Payload)
	}
	pnc := calls16[2].Payload.(*DataTransfer16)
	var inner GetInstalledCertificateIdsRequest
	if err := Decode(OCPP201, []byte(pnc.Data), &inner); err != nil || pnc.VendorID != VendorOCA {
		t.Fatalf("PnC root sync: %v %+v", err, pnc)
	}
	follow, err = e.b.HandleResult(ctx, "CS-2", OCPP16, calls16[2], "", mustJSON(t, DataTransfer16Response{Status: "Accepted", Data: `{"status":"NotFound"}`}))
	if err != nil || len(follow) != 2 {
		t.Fatalf("PnC follow-up %v %+v", err, follow)
	}
	var pncTypes []string
	for _, c := range follow {
		e.schema(t, OCPP16, "DataTransfer", false, c.Payload)
		dt := c.Payload.(*DataTransfer16)
		var install InstallCertificateRequest
		if dt.VendorID != VendorOCA || dt.MessageID != "InstallCertificate" || Decode(OCPP201, []byte(dt.Data), &install) != nil {
			t.Fatalf("PnC install %+v", dt)
		}
		pncTypes = append(pncTypes, install.CertificateType)
	}
	slices.Sort(pncTypes)
	if fmt.Sprint(pncTypes) != "[MORootCertificate V2GRootCertificate]" {
		t.Errorf("PnC installs %v", pncTypes)
	}
	// A 1.6 station without Plug and Charge: nothing follows, nothing is
	// taken for a refused certificate.
	before, _ := e.d.Store.AuditLog(ctx, 0, 1000)
	follow, err = e.b.HandleResult(ctx, "CS-2", OCPP16, calls16[2], "", mustJSON(t, DataTransfer16Response{Status: "UnknownVendorId"}))
	after, _ := e.d.Store.AuditLog(ctx, 0, 1000)
	if err != nil || len(follow) != 0 || len(after) != len(before) {
		t.Errorf("UnknownVendorId: %v %+v, %d new audit entries", err, follow, len(after)-len(before))
	}
	follow, err = e.b.HandleResult(ctx, "CS-2", OCPP16, calls16[0], "", []byte(`{"status":"NotFound"}`))
	if err != nil || len(follow) != 1 {
		t.Fatalf("1.6 follow-up %v %+v", err, follow)
	}
	e.schema(t, OCPP16, "InstallCertificate", false, follow[0].Payload)
	if p := follow[0].Payload.(*InstallCertificate16); p.CertificateType != "CentralSystemRootCertificate" {
		t.Errorf("1.6 install %+v", p)
	}
}

func TestRenewalCalls(t *testing.T) {
	e := newBridgeEnvWith(t, datadir.InitConfig{Organization: "Test", ISO20: true}, "")
	ctx := context.Background()
	st, err := e.d.Store.Station(ctx, "CS-1")
	if err != nil {
		t.Fatal(err)
	}
	if calls, err := e.b.RenewalCalls(ctx, st, OCPP201); err != nil || len(calls) != 0 {
		t.Fatalf("no certificates yet: %v %+v", err, calls)
	}
	for _, r := range []ca.Request{
		{Profile: policies.OCPPChargingStation, Tenant: "cpo1", CSR: []byte(csrPEM(t, "SN-0001", "Example CPO"))},
		{Profile: policies.ISO2SECC, Tenant: "cpo1", CSR: []byte(csrPEM(t, "DE*ABC*E0001", "Example CPO"))},
		{Profile: policies.ISO2SECC, Tenant: "cpo1", CSR: []byte(csrPEM(t, "DE*ABC*E0009", "Example CPO"))}, // not this station's
		{Profile: policies.ISO20SECC, Tenant: "cpo1", CSR: []byte(csrPEMOn(t, elliptic.P521(), "DEABCE0002", "Example CPO"))},
	} {
		if _, err := e.d.CA.Issue(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if calls, _ := e.b.RenewalCalls(ctx, st, OCPP201); len(calls) != 0 {
		t.Errorf("fresh certificates: %+v", calls)
	}
	e.b.Policy.RenewalWindow = 5 * 365 * 24 * time.Hour
	calls, err := e.b.RenewalCalls(ctx, st, OCPP201)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range calls {
		e.schema(t, OCPP201, c.Action, false, c.Payload)
		got = append(got, c.Payload.(*TriggerMessageRequest).RequestedMessage)
	}
	if fmt.Sprint(got) != "[SignChargingStationCertificate SignV2GCertificate]" {
		t.Errorf("2.0.1 renewal %v (the -20 certificate cannot be asked for before 2.1)", got)
	}
	// OCPP 2.1 asks for the ISO 15118-20 certificate too.
	calls, err = e.b.RenewalCalls(ctx, st, OCPP21)
	got = nil
	for _, c := range calls {
		e.schema(t, OCPP21, c.Action, false, c.Payload)
		got = append(got, c.Payload.(*TriggerMessageRequest).RequestedMessage)
	}
	if err != nil || fmt.Sprint(got) != "[SignChargingStationCertificate SignV2GCertificate SignV2G20Certificate]" {
		t.Errorf("2.1 renewal %v %v", got, err)
	}
	calls, _ = e.b.RenewalCalls(ctx, st, OCPP16)
	if len(calls) != 2 || calls[0].Payload.(*ExtendedTriggerMessage16).RequestedMessage != "SignChargePointCertificate" {
		t.Fatalf("1.6 renewal %+v", calls)
	}
	e.schema(t, OCPP16, "ExtendedTriggerMessage", false, calls[0].Payload)
	e.schema(t, OCPP16, "DataTransfer", false, calls[1].Payload)
	var trigger TriggerMessageRequest
	if dt := calls[1].Payload.(*DataTransfer16); dt.MessageID != "TriggerMessage" || Decode(OCPP201, []byte(dt.Data), &trigger) != nil || trigger.RequestedMessage != "SignV2GCertificate" {
		t.Errorf("1.6 Plug and Charge renewal %+v", calls[1].Payload)
	}
}

// TestRootRollover: a station with AdditionalRootCertificateCheck that
// holds the old CSMS root gets the new one as a rollover certificate
// signed by the old.
func TestRootRollover(t *testing.T) {
	e := newBridgeEnv(t)
	ctx := context.Background()
	if _, err := e.d.CA.CreateCA(ctx, ca.CAConfig{Name: "csms-root-2", Profile: policies.OCPPCSMSRoot, CommonName: "Test Charging Station CA 2", Organization: "Test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.CA.CrossCertify(ctx, "csms-root", "csms-root"); err == nil {
		t.Error("cross-certifying a root by itself was accepted")
	}
	if _, err := e.d.CA.CrossCertify(ctx, "csms-root-2", "v2g-root"); err == nil {
		t.Error("cross-certifying by a root of another profile was accepted")
	}
	x, err := e.d.CA.CrossCertify(ctx, "csms-root-2", "csms-root")
	if err != nil {
		t.Fatal(err)
	}
	anchors, err := AnchorsFrom(ctx, e.d.CA, e.d.Store, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(anchors[UseCSMS]) != 2 || len(anchors[UseCSMSRollover]) != 1 {
		t.Fatalf("anchors: %d CSMS roots, %d rollovers", len(anchors[UseCSMS]), len(anchors[UseCSMSRollover]))
	}
	e.b.Anchors = anchors
	oldRoot, _ := e.d.CA.Authority("csms-root")
	newRoot, _ := e.d.CA.Authority("csms-root-2")
	oldHash, _ := HashDataOf(oldRoot.Cert, oldRoot.Cert, "SHA256")
	sent := Call{"GetInstalledCertificateIds", &GetInstalledCertificateIdsRequest{CertificateType: []string{"CSMSRootCertificate"}}}
	answer := mustJSON(t, GetInstalledCertificateIdsResponse{Status: "Accepted", CertificateHashDataChain: []CertificateHashDataChain{
		{CertificateType: "CSMSRootCertificate", CertificateHashData: oldHash}}})
	install := func() *x509.Certificate {
		t.Helper()
		follow, err := e.b.HandleResult(ctx, "CS-1", OCPP201, sent, "", answer)
		if err != nil || len(follow) != 1 {
			t.Fatalf("follow-up %v %+v", err, follow)
		}
		e.schema(t, OCPP201, "InstallCertificate", false, follow[0].Payload)
		certs, err := ParsePEMChain([]byte(follow[0].Payload.(*InstallCertificateRequest).Certificate))
		if err != nil {
			t.Fatal(err)
		}
		return certs[0]
	}
	if c := install(); !c.Equal(newRoot.Cert) {
		t.Errorf("without AdditionalRootCertificateCheck: installs %s issued by %s, want the self-signed new root", c.Subject, c.Issuer)
	}
	e.b.Policy.AdditionalRootCertificateCheck = true
	c := install()
	if !c.Equal(x.Cert()) || c.CheckSignatureFrom(oldRoot.Cert) != nil || !bytes.Equal(c.RawSubjectPublicKeyInfo, newRoot.Cert.RawSubjectPublicKeyInfo) {
		t.Errorf("with AdditionalRootCertificateCheck: installs %s issued by %s, want the rollover certificate", c.Subject, c.Issuer)
	}
	// A station that holds no CSMS root yet gets the roots themselves.
	answer = []byte(`{"status":"NotFound"}`)
	follow, _ := e.b.HandleResult(ctx, "CS-1", OCPP201, sent, "", answer)
	for _, f := range follow {
		certs, _ := ParsePEMChain([]byte(f.Payload.(*InstallCertificateRequest).Certificate))
		if IsRoot(certs[0]) != nil {
			t.Errorf("installs a non-root %s to a station without CSMS roots", certs[0].Subject)
		}
	}
}
