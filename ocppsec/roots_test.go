package ocppsec

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pncpki/pncpki/ca"
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
	follow, err := e.b.HandleResult(ctx, "CS-1", OCPP201, calls[0], mustJSON(t, answer))
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
	follow, _ = e.b.HandleResult(ctx, "CS-1", OCPP201, calls[0], mustJSON(t, answer))
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

	// OCPP 1.6: one request per type, CentralSystemRootCertificate.
	calls16 := e.b.RootSyncCalls(OCPP16)
	if len(calls16) != 2 {
		t.Fatalf("1.6 sync calls %+v", calls16)
	}
	for _, c := range calls16 {
		e.schema(t, OCPP16, "GetInstalledCertificateIds", false, c.Payload)
	}
	follow, err = e.b.HandleResult(ctx, "CS-2", OCPP16, calls16[0], []byte(`{"status":"NotFound"}`))
	if err != nil || len(follow) != 1 {
		t.Fatalf("1.6 follow-up %v %+v", err, follow)
	}
	e.schema(t, OCPP16, "InstallCertificate", false, follow[0].Payload)
	if p := follow[0].Payload.(*InstallCertificate16); p.CertificateType != "CentralSystemRootCertificate" {
		t.Errorf("1.6 install %+v", p)
	}
}

func TestRenewalCalls(t *testing.T) {
	e := newBridgeEnv(t)
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
		t.Errorf("2.0.1 renewal %v", got)
	}
	calls, _ = e.b.RenewalCalls(ctx, st, OCPP16)
	if len(calls) != 1 || calls[0].Payload.(*ExtendedTriggerMessage16).RequestedMessage != "SignChargePointCertificate" {
		t.Errorf("1.6 renewal %+v", calls)
	}
	e.schema(t, OCPP16, "ExtendedTriggerMessage", false, calls[0].Payload)
}
