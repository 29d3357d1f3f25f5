package opnc

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/internal/egress"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/testcerts"
	"github.com/pncpki/pncpki/webhook"
)

type env struct {
	srv    *httptest.Server
	server *Server
	token  string
	oem    string // a token of OEM tenant oem1
	emsp   string // a token of eMSP tenant emsp1
	admin  string
	bridge *ocppsec.Bridge
	pool   *contract.Pool
	pki    *testcerts.PKI
	ev     *contract.EV
	d      *datadir.Dir
}

func newEnv(t *testing.T) *env { return newEnvWith(t, false) }

// newEnvWith is newEnv, with iso20 also the ISO 15118-20 hierarchies and
// CPS identities.
func newEnvWith(t *testing.T, iso20 bool) *env {
	t.Helper()
	ctx := context.Background()
	d, err := datadir.Open(ctx, t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Init(ctx, datadir.InitConfig{Organization: "Test", ISO20: iso20}); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*policies.Tenant{
		{Name: "cpo1", Kind: policies.TenantCPO, OperatorIDs: []string{"DEABC"}},
		{Name: "emsp1", Kind: policies.TenantEMSP, ProviderIDs: []string{"DE8AA"}},
		{Name: "oem1", Kind: policies.TenantOEM},
	} {
		if err := d.Store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	pool := &contract.Pool{Store: d.Store, CA: d.CA}
	if _, err := pool.Put(ctx, "emsp1", store.Contract{EMAID: "DE8AAC12345678", PCID: testcerts.PCID, Default: true}); err != nil {
		t.Fatal(err)
	}
	oem, err := testcerts.Generate(6, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cps, err := contract.LoadCPS(ctx, d.CA, "softkms:path="+datadir.CPSLeafKey, filepath.Join(d.Path, "cps-leaf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var cps20 []contract.CPS
	for _, l := range datadir.CPS20Leaves {
		if !iso20 {
			break
		}
		c, err := contract.LoadCPS(ctx, d.CA, "softkms:path="+l.Key, filepath.Join(d.Path, l.Cert))
		if err != nil {
			t.Fatal(err)
		}
		cps20 = append(cps20, c)
	}
	anchors, err := ocppsec.AnchorsFrom(ctx, d.CA, d.Store, "")
	if err != nil {
		t.Fatal(err)
	}
	anchors.Add(ocppsec.UseOEM, oem.Get("oem-root").Cert)
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	bridge := &ocppsec.Bridge{Store: d.Store, Anchors: anchors}
	if err := bridge.RefreshAnchors(ctx); err != nil {
		t.Fatal(err)
	}
	events := webhook.NewDispatcher(d.Store, nil, nil, &egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	events.Backoff = 10 * time.Millisecond
	runCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go events.Run(runCtx, 2)
	pool.Changed = func(ctx context.Context, change contract.Change, c *store.Contract) {
		events.ContractChanged(ctx, string(change), c)
	}
	s := &Server{
		Verify:  func(tok string) (*auth.Claims, error) { return key.Verify(tok, time.Now()) },
		Anchors: bridge.TrustAnchors,
		Roots:   bridge,
		Events:  events,
		Pool:    pool,
		Installer: &contract.Installer{Pool: pool, CPS: []contract.CPS{cps}, CPS20: cps20,
			OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
				return bridge.TrustAnchors()[ocppsec.UseOEM], oem.Chain("oem-prov")[:2], nil
			}},
	}
	bridge.AnchorChanged = RootEvents(events)
	r := chi.NewRouter()
	s.Mount(r, DefaultPrefix)
	s.MountOPCP(r, DefaultOPCPPrefix)
	srv := httptest.NewTLSServer(r)
	t.Cleanup(srv.Close)
	tok, _ := key.Mint("csms", "cpo1", auth.RoleOperator, time.Hour, time.Now())
	v2g, _ := d.CA.Authority("v2g-root")
	mo, _ := d.CA.Authority("mo-root")
	ev := &contract.EV{ProvisioningCert: oem.Get("oem-prov").Cert, ProvisioningKey: oem.Get("oem-prov").Key, Roots: []*x509.Certificate{v2g.Cert, mo.Cert}}
	oemTok, _ := key.Mint("oem-backend", "oem1", auth.RoleOperator, time.Hour, time.Now())
	emspTok, _ := key.Mint("emsp-backend", "emsp1", auth.RoleOperator, time.Hour, time.Now())
	adminTok, _ := key.Mint("root-pool-operator", "", auth.RoleAdmin, time.Hour, time.Now())
	return &env{srv: srv, server: s, token: tok, oem: oemTok, emsp: emspTok, admin: adminTok, bridge: bridge, pool: pool, pki: oem, ev: ev, d: d}
}

func (e *env) do(t *testing.T, method, path, contentType string, body []byte, token string) (int, []byte) {
	t.Helper()
	return e.doWith(t, method, path, contentType, body, token, nil)
}

// doWith is do with more request headers.
func (e *env) doWith(t *testing.T, method, path, contentType string, body []byte, token string, header map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type jsonschemaSchema = jsonschema.Schema

// schema compiles a component of an OPNC OpenAPI document from
// ../shared/spec (never copied into the repository).
func schema(t *testing.T, file, ref string) *jsonschema.Schema {
	return specSchema(t, filepath.Join("opnc", "consolidated"), file, ref)
}

// specSchema compiles a component of an OpenAPI document under
// ../shared/spec/sub.
func specSchema(t *testing.T, sub, file, ref string) *jsonschema.Schema {
	t.Helper()
	dir := os.Getenv("PNCPKI_SPEC")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "spec")
	}
	data, err := os.ReadFile(filepath.Join(dir, sub, file))
	if err != nil {
		t.Skipf("SKIP: OpenAPI documents not found (set PNCPKI_SPEC): %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	dropBooleanRequired(doc)
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///"+file, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("file:///" + file + "#" + ref)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validate(t *testing.T, sch *jsonschema.Schema, body []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("does not validate against OPNC's schema: %v\n%s", err, body)
	}
}

// TestSignedContractData: a CSMS posts the vehicle's request in OPNC's
// shape and gets signed contract data the vehicle can use; the request
// and the answer validate against OPNC's documents.
func TestSignedContractData(t *testing.T) {
	e := newEnv(t)
	exiReq, err := e.ev.InstallationRequest()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"certificateInstallationReq": base64.StdEncoding.EncodeToString(exiReq), "xsdMsgDefNamespace": ocppsec.ISO15118v2Schema})
	validate(t, schema(t, "ccp.api.consolidated.v1.json", "/components/requestBodies/getSignedContractDataReq.v1/content/application~1json/schema"), body)
	status, out := e.do(t, "POST", "/opnc/v1/ccp/signedcontractdata", "application/json", body, e.token)
	if status != 200 {
		t.Fatalf("HTTP %d %s", status, out)
	}
	validate(t, schema(t, "ccp.api.consolidated.v1.json", "/components/schemas/getSignedContractDataRes.v1"), out)
	var res struct {
		Collection []struct {
			Res   string `json:"certificateInstallationRes"`
			EMAID string `json:"emaid"`
			PCID  string `json:"pcid"`
		} `json:"signedContractDataCollection"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Collection) != 1 {
		t.Fatalf("%v %s", err, out)
	}
	c := res.Collection[0]
	if c.PCID != testcerts.PCID || !strings.HasPrefix(c.EMAID, "DE8AAC12345678") {
		t.Errorf("emaid %s pcid %s", c.EMAID, c.PCID)
	}
	exiRes, _ := base64.StdEncoding.DecodeString(c.Res)
	if _, err := e.ev.ReadResponse(exiRes, e.ev.ProvisioningKey); err != nil {
		t.Fatal(err)
	}
}

// Bad input and authorization: each refused with OPNC's error object and
// the status the spec gives, nothing issued.
func TestSignedContractDataRefusals(t *testing.T) {
	e := newEnv(t)
	exiReq, _ := e.ev.InstallationRequest()
	good := base64.StdEncoding.EncodeToString(exiReq)
	js := func(req, ns string) []byte {
		b, _ := json.Marshal(map[string]string{"certificateInstallationReq": req, "xsdMsgDefNamespace": ns})
		return b
	}
	// A vehicle without a contract.
	other, err := testcerts.Generate(9, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	stranger := *e.ev
	stranger.ProvisioningCert, stranger.ProvisioningKey = other.Get("oem-prov").Cert, other.Get("oem-prov").Key
	strangerReq, _ := stranger.InstallationRequest()
	errSchema := schema(t, "ccp.api.consolidated.v1.json", "/components/schemas/error.v1")
	tests := []struct {
		name, contentType, token string
		body                     []byte
		status                   int
	}{
		{"no token", "application/json", "", js(good, ocppsec.ISO15118v2Schema), 401},
		{"garbage token", "application/json", "x.y.z", js(good, ocppsec.ISO15118v2Schema), 401},
		{"wrong content type", "text/plain", e.token, js(good, ocppsec.ISO15118v2Schema), 415},
		{"not JSON", "application/json", e.token, []byte("{"), 400},
		{"unknown field", "application/json", e.token, []byte(`{"certificateInstallationReq":"gA==","xsdMsgDefNamespace":"urn:iso:15118:2:2013:MsgDef","x":1}`), 400},
		{"ISO 15118-20", "application/json", e.token, js(good, "urn:iso:15118:20:2020:MsgDef"), 400},
		{"bad base64", "application/json", e.token, js("not base64!", ocppsec.ISO15118v2Schema), 400},
		{"not EXI", "application/json", e.token, js(base64.StdEncoding.EncodeToString([]byte("garbage")), ocppsec.ISO15118v2Schema), 400},
		{"oversize", "application/json", e.token, js(strings.Repeat("A", MaxBody), ocppsec.ISO15118v2Schema), 413},
		{"unknown vehicle", "application/json", e.token, js(base64.StdEncoding.EncodeToString(strangerReq), ocppsec.ISO15118v2Schema), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.doWith(t, "POST", "/opnc/v1/ccp/signedcontractdata", tt.contentType, tt.body, tt.token, map[string]string{"alwaysReturnEXI": "false"})
			if status != tt.status {
				t.Fatalf("HTTP %d, want %d: %s", status, tt.status, out)
			}
			validate(t, errSchema, out)
		})
	}
	// alwaysReturnEXI, true by default: the refusals the vehicle can be
	// told of come as an answer with their ResponseCode.
	for _, tt := range []struct {
		name, header string
		body         []byte
		code         string
	}{
		{"not EXI", "", js(base64.StdEncoding.EncodeToString([]byte("garbage")), ocppsec.ISO15118v2Schema), contract.ResponseFailed},
		{"unknown vehicle", "", js(base64.StdEncoding.EncodeToString(strangerReq), ocppsec.ISO15118v2Schema), contract.ResponseCertChainError},
		{"unknown vehicle, alwaysReturnEXI true", "true", js(base64.StdEncoding.EncodeToString(strangerReq), ocppsec.ISO15118v2Schema), contract.ResponseCertChainError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.header != "" {
				h["alwaysReturnEXI"] = tt.header
			}
			status, out := e.doWith(t, "POST", "/opnc/v1/ccp/signedcontractdata", "application/json", tt.body, e.token, h)
			var res struct {
				Collection []struct {
					Res string `json:"certificateInstallationRes"`
				} `json:"signedContractDataCollection"`
			}
			if status != 200 || json.Unmarshal(out, &res) != nil || len(res.Collection) != 1 {
				t.Fatalf("HTTP %d: %s", status, out)
			}
			der, _ := base64.StdEncoding.DecodeString(res.Collection[0].Res)
			doc, err := exi.ISO2.Decode(der)
			if err != nil {
				t.Fatal(err)
			}
			if got := doc.Child("Body").Child("CertificateInstallationRes").Child("ResponseCode").Val(); got != tt.code {
				t.Fatalf("ResponseCode %s, want %s", got, tt.code)
			}
		})
	}
	recs, _ := e.d.Store.Certificates(context.Background(), store.Filter{Profile: policies.ISO2Contract})
	if len(recs) != 0 {
		t.Errorf("%d contract certificates after refusals", len(recs))
	}
}

// TestRootCertificates: the root pool in OPNC's shape, filtered by
// pkiType, and one root by its ID.
func TestRootCertificates(t *testing.T) {
	e := newEnv(t)
	status, out := e.do(t, "GET", "/opnc/v1/rcp/rootcertificates", "", nil, e.token)
	if status != 200 {
		t.Fatalf("HTTP %d %s", status, out)
	}
	var res struct {
		Roots []map[string]any `json:"rootCertificateCollection"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Roots) != 3 {
		t.Fatalf("%d roots (V2G, MO, OEM), %v: %s", len(res.Roots), err, out)
	}
	// OPNC's rootCertificate object declares at most one property, and
	// rootTypeList an enum of strings for an array: as published no root
	// can satisfy them. Each other property is checked against its schema,
	// rootTypeList's items against the enum.
	for _, root := range res.Roots {
		for _, typ := range root["rootTypeList"].([]any) {
			if typ != "V2G" && typ != "eMSP" && typ != "OEM" && typ != "PE" {
				t.Errorf("rootTypeList item %v", typ)
			}
		}
		for k, v := range root {
			if k == "rootTypeList" {
				continue
			}
			b, _ := json.Marshal(v)
			validate(t, schema(t, "rcp.api.consolidated.v1.json", "/components/schemas/rootCertificate.v1/properties/"+k), b)
		}
	}
	status, out = e.do(t, "GET", "/opnc/v1/rcp/rootcertificates?pkiType=oem", "", nil, e.token)
	if status != 200 || strings.Count(string(out), "rootCertificateId") != 1 || !strings.Contains(string(out), `"OEM"`) {
		t.Errorf("pkiType=oem: %d %s", status, out)
	}
	if status, _ := e.do(t, "GET", "/opnc/v1/rcp/rootcertificates?pkiType=nope", "", nil, e.token); status != 400 {
		t.Errorf("unknown pkiType: %d", status)
	}
	id := res.Roots[0]["rootCertificateId"].(string)
	if status, out := e.do(t, "GET", "/opnc/v1/rcp/rootcertificates/"+id, "", nil, e.token); status != 200 || !strings.Contains(string(out), id) {
		t.Errorf("by ID: %d %s", status, out)
	}
	if status, _ := e.do(t, "GET", "/opnc/v1/rcp/rootcertificates/00000000-0000-8000-8000-000000000000", "", nil, e.token); status != 404 {
		t.Errorf("unknown ID: %d", status)
	}
	if status, _ := e.do(t, "GET", "/opnc/v1/rcp/rootcertificates", "", nil, ""); status != 401 {
		t.Errorf("no token: %d", status)
	}
}

// dropBooleanRequired removes "required": false from property schemas, a
// defect of OPNC's certificateChain.v1 (required must be an array) that
// would fail the whole document's compilation.
func dropBooleanRequired(v any) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["required"].(bool); ok {
			delete(x, "required")
		}
		for _, c := range x {
			dropBooleanRequired(c)
		}
	case []any:
		for _, c := range x {
			dropBooleanRequired(c)
		}
	}
}
