package contract

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
)

func countCertificates(t *testing.T, d *datadir.Dir) int {
	t.Helper()
	recs, err := d.Store.Certificates(context.Background(), store.Filter{Limit: store.MaxPage})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

// realistic is a real operator's hierarchy: a 35-character organization,
// a country and a public https URL.
var realistic = datadir.InitConfig{Organization: "Stadtwerke Musterstadt Energie GmbH", Country: "DE"}

const realisticURL = "https://pki.stadtwerke-musterstadt.example"

// TestAnswerSizeExact: AnswerSize of an answer's certificate lengths is
// its size to the byte, for installations and updates; the bound used
// before signing is never below it.
func TestAnswerSizeExact(t *testing.T) {
	e := newInstallEnvWith(t, realistic, realisticURL)
	ctx := context.Background()
	cps := e.in.CPS[0]
	cpsLens := derLens(ChainDER(cps.Chain[:len(cps.Chain)-1]))
	check := func(action Action, res *Response) {
		t.Helper()
		n, err := AnswerSize(action, cpsLens, derLens(res.ContractChain), len(res.EMAID), len(SessionID))
		if err != nil {
			t.Fatal(err)
		}
		if n != len(res.EXI) {
			t.Fatalf("%s: AnswerSize %d, answer %d bytes", action, n, len(res.EXI))
		}
	}
	for i := range 20 {
		ev := e.ev
		req, err := ev.InstallationRequest()
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.in.Handle(ctx, ActionInstall, req, 5600)
		if err != nil {
			t.Fatal(err)
		}
		check(ActionInstall, res)
		if i == 0 {
			got, err := ev.ReadResponse(res.EXI, ev.ProvisioningKey)
			if err != nil {
				t.Fatal(err)
			}
			upd, err := ev.UpdateRequest(got.ContractChain, got.ContractKey, got.EMAID)
			if err != nil {
				t.Fatal(err)
			}
			ures, err := e.in.Handle(ctx, ActionUpdate, upd, 5600)
			if err != nil {
				t.Fatal(err)
			}
			check(ActionUpdate, ures)
		}
	}
}

// TestRealHierarchiesFit installs and updates a contract under the
// hierarchies operators create, within OCPP 2.0.1's 5,600 characters.
func TestRealHierarchiesFit(t *testing.T) {
	tests := []struct {
		name string
		cfg  datadir.InitConfig
		url  string
	}{
		{"demo", datadir.InitConfig{Organization: "pncpki demo"}, ""},
		{"walkthrough", datadir.InitConfig{Organization: "Example CPO", Country: "DE"}, ""},
		{"realistic", realistic, realisticURL},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newInstallEnvWith(t, tc.cfg, tc.url)
			for len(e.ev.Roots) < 20 { // a vehicle listing every root it may
				e.ev.Roots = append(e.ev.Roots, e.oem.Get("v2g-root").Cert)
			}
			req, err := e.ev.InstallationRequest()
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.in.Handle(ctx, ActionInstall, req, 5600)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.ev.ReadResponse(res.EXI, e.ev.ProvisioningKey)
			if err != nil {
				t.Fatal(err)
			}
			checkContractChain(t, e.d, got)
			upd, _ := e.ev.UpdateRequest(got.ContractChain, got.ContractKey, got.EMAID)
			ures, err := e.in.Handle(ctx, ActionUpdate, upd, 5600)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: installation %d, update %d base64 characters", tc.name,
				base64.StdEncoding.EncodedLen(len(res.EXI)), base64.StdEncoding.EncodedLen(len(ures.EXI)))
		})
	}
}

// TestFailureAnswers: every failure answer decodes with pncpki's codec as
// the message of its action with its ResponseCode, and carries the
// request's SessionID and eMAID.
func TestFailureAnswers(t *testing.T) {
	codes := []string{ResponseFailed, ResponseSignatureError, ResponseCertChainError, ResponseCertificateExpired,
		ResponseCertificateRevoked, ResponseNoCertificate, ResponseContractCanceled}
	for _, action := range []Action{ActionInstall, ActionUpdate} {
		for _, code := range codes {
			for _, tc := range []struct{ session, emaid, wantSession, wantEMAID string }{
				{"0102030405060708", "DE8AAC12345678D", "0102030405060708", "DE8AAC12345678D"},
				{"", "", "00", failedEMAID},
				{"not hex", "DE8AA", "00", failedEMAID},
			} {
				out, err := FailureAnswer(action, code, tc.session, tc.emaid)
				if err != nil {
					t.Fatalf("%s %s: %v", action, code, err)
				}
				doc, err := exi.ISO2.Decode(out)
				if err != nil {
					t.Fatalf("%s %s: decode: %v", action, code, err)
				}
				name := "CertificateInstallationRes"
				if action == ActionUpdate {
					name = "CertificateUpdateRes"
				}
				body := doc.Child("Body").Child(name)
				if body == nil {
					t.Fatalf("%s %s: no %s", action, code, name)
				}
				if got := body.Child("ResponseCode").Val(); got != code {
					t.Errorf("%s: ResponseCode %s, want %s", name, got, code)
				}
				if got := doc.Child("Header").Child("SessionID").Val(); !strings.EqualFold(got, tc.wantSession) {
					t.Errorf("SessionID %s, want %s", got, tc.wantSession)
				}
				if got := body.Child("eMAID").Val(); got != tc.wantEMAID {
					t.Errorf("eMAID %s, want %s", got, tc.wantEMAID)
				}
				if doc.Child("Header").Child("Signature") != nil {
					t.Error("a failure answer is signed")
				}
			}
		}
	}
}

// TestBudgetBoundsAnswers: the budget of a hierarchy is never below an
// answer it gives, and above it only by what the contract certificate's
// shorter signature and eMAID and the real SessionID leave out.
func TestBudgetBoundsAnswers(t *testing.T) {
	e := newInstallEnvWith(t, realistic, realisticURL)
	ctx := context.Background()
	var cps []SizedChain
	for _, c := range e.in.CPS {
		cps = append(cps, SizeCPS(c.Chain))
	}
	combs, err := Budget(e.d.CA, e.d.CA.Authorities(), cps)
	if err != nil || len(combs) != 1 {
		t.Fatalf("budget: %v %+v", err, combs)
	}
	worst := combs[0].Base64
	for range 20 {
		req, err := e.ev.InstallationRequest()
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.in.Handle(ctx, ActionInstall, req, worst)
		if err != nil {
			t.Fatal(err)
		}
		n := base64.StdEncoding.EncodedLen(len(res.EXI))
		if n > worst || worst-n > 24 {
			t.Fatalf("answer of %d characters, budget %d", n, worst)
		}
	}
	// CheckBudget refuses a limit one below the worst case and passes the
	// worst case itself.
	if err := CheckBudget(combs, worst-1); err == nil {
		t.Error("CheckBudget passed a limit below the worst case")
	}
	if err := CheckBudget(combs, worst); err != nil {
		t.Error(err)
	}
}

// TestWithoutRoot: a chain loses its last certificate only when that is a
// root; an imported sub-CA chain whose root pncpki lacks keeps them all.
func TestWithoutRoot(t *testing.T) {
	pki, err := testcerts.Generate(1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sub2, sub1, root := pki.Get("mo-sub2").Cert, pki.Get("mo-sub1").Cert, pki.Get("mo-root").Cert
	for _, tc := range []struct {
		chain []*x509.Certificate
		want  int
	}{
		{[]*x509.Certificate{sub2, sub1, root}, 2},
		{[]*x509.Certificate{sub2, sub1}, 2},
		{[]*x509.Certificate{root}, 1},
	} {
		if got := WithoutRoot(tc.chain); len(got) != tc.want {
			t.Errorf("WithoutRoot of %d certificates kept %d, want %d", len(tc.chain), len(got), tc.want)
		}
	}
}

// TestUpstreamRefusalPassedOn: an ecosystem that answers a refusal with an
// answer for the vehicle (alwaysReturnEXI) has it passed on as the
// refusal's, with its ResponseCode; one that answers another message is
// refused as FAILED.
func TestUpstreamRefusalPassedOn(t *testing.T) {
	e := newInstallEnv(t)
	ctx := context.Background()
	stranger := issueProv(t, e, "WMIPNCTEST0000009")
	ev := *e.ev
	ev.ProvisioningCert, ev.ProvisioningKey = stranger.Cert, stranger.Key
	req, err := ev.InstallationRequest()
	if err != nil {
		t.Fatal(err)
	}
	refusal, err := FailureAnswer(ActionInstall, ResponseNoCertificate, "00", "")
	if err != nil {
		t.Fatal(err)
	}
	notAnAnswer, _ := exi.ISO2.Encode(exi.New("V2G_Message", exi.New("Header", exi.Text("SessionID", "00")),
		exi.New("Body", exi.New("SessionStopRes", exi.Text("ResponseCode", ResponseOK)))))
	for _, tc := range []struct {
		name   string
		answer []byte
		code   string
	}{
		{"refusal for the vehicle", refusal, ResponseNoCertificate},
		{"another message", notAnAnswer, ResponseFailed},
	} {
		e.in.Upstream = func(context.Context, []byte) ([]byte, string, error) { return tc.answer, "", nil }
		_, err := e.in.Handle(ctx, ActionInstall, req, 5600)
		var ie *InstallError
		if !errors.As(err, &ie) || ie.Reason != ReasonUpstream || ie.ResponseCode != tc.code {
			t.Fatalf("%s: %v", tc.name, err)
		}
		doc, err := exi.ISO2.Decode(ie.Answer)
		if err != nil || doc.Child("Body").Child("CertificateInstallationRes").Child("ResponseCode").Val() != tc.code {
			t.Errorf("%s: the vehicle's answer: %v", tc.name, err)
		}
	}
}
