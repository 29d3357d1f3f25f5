package exi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/contract/exi/internal/xsdgen"
)

// The generated tables must be what the generator makes of the XSDs now.
func TestGeneratedTablesCurrent(t *testing.T) {
	for file, gen := range map[string]func(string) ([]byte, error){"iso2_grammar.go": xsdgen.ISO2, "iso20_grammar.go": xsdgen.ISO20} {
		want, err := gen(specDir(t))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./contract/exi", file)
		}
	}
}

// sample builds a CertificateInstallationReq document without spec data.
func sample(roots int) *exi.Element {
	ids := exi.New("ListOfRootCertificateIDs")
	for i := range roots {
		ids.Children = append(ids.Children, exi.New("RootCertificateID",
			exi.Text("X509IssuerName", fmt.Sprintf("CN=Root %d,O=Test,DC=V2G", i)),
			exi.Text("X509SerialNumber", "296101661083707992952033977735582144065756916494")))
	}
	return exi.New("V2G_Message",
		exi.New("Header", exi.Text("SessionID", "0102030405060708")),
		exi.New("Body", exi.New("CertificateInstallationReq",
			exi.Text("OEMProvisioningCert", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x30}, 500))),
			ids,
		).WithAttr("Id", "id1")))
}

func TestJSONRoundTrip(t *testing.T) {
	doc := sample(3)
	want, err := exi.ISO2.Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := exi.ISO2.Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	js, err := exi.JSON(dec)
	if err != nil {
		t.Fatal(err)
	}
	els, err := exi.ParseJSON(js)
	if err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	got, err := exi.ISO2.Encode(els[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("JSON round trip changed the stream\n%s", js)
	}
	if !strings.Contains(string(js), `"@Id": "id1"`) || !strings.Contains(string(js), `"RootCertificateID": [`) {
		t.Errorf("unexpected JSON form:\n%s", js)
	}
}

// modified returns a copy of ISO2 whose grammars and types may be changed
// without touching the real tables.
func modified() *exi.Schema {
	s := *exi.ISO2
	s.Grammars = slices.Clone(s.Grammars)
	s.Types = slices.Clone(s.Types)
	return &s
}

func grammarIndex(t *testing.T, s *exi.Schema, name string) int {
	for i, g := range s.Grammars {
		if g.Name == name {
			return i
		}
	}
	t.Fatalf("no grammar %s", name)
	return 0
}

func TestDecodeRejects(t *testing.T) {
	good, err := exi.ISO2.Encode(sample(2))
	if err != nil {
		t.Fatal(err)
	}

	// Over-long binary: a SessionID of 9 bytes, written with a schema
	// whose sessionIDType allows it.
	long := modified()
	for i := range long.Types {
		if long.Types[i].Name == "sessionIDType" {
			long.Types[i].MaxLen = 100
		}
	}
	longDoc := sample(1)
	longDoc.Child("Header").Child("SessionID").Value = "010203040506070809"
	overlong, err := long.Encode(longDoc)
	if err != nil {
		t.Fatal(err)
	}

	// Too many list items: 21 RootCertificateIDs, written with a grammar
	// whose 21st state loops.
	many := modified()
	gi := grammarIndex(t, many, "ListOfRootCertificateIDsType")
	g := many.Grammars[gi]
	g.States = slices.Clone(g.States)
	last := len(g.States) - 1
	loop := g.States[last-1].Prods[0] // SE(RootCertificateID)
	loop.Next = int32(last)
	g.States[last] = exi.State{Bits: 1, Prods: []exi.Prod{{Event: exi.EventEE}, loop}}
	many.Grammars[gi] = g
	tooMany, err := many.Encode(sample(21))
	if err != nil {
		t.Fatal(err)
	}

	// Wrong event code: the body element code pointed at an element
	// whose grammar does not match what follows.
	wrong := slices.Clone(good)
	wrong[2] ^= 0x10

	tests := []struct {
		name string
		in   []byte
		want string // in the error
	}{
		{"empty", nil, "truncated"},
		{"header only", []byte{0x80}, "truncated"},
		{"wrong header", append([]byte{0xa0}, good[1:]...), "EXI header"},
		{"truncated", good[:len(good)/2], "truncated"},
		{"trailing bytes", append(slices.Clone(good), 0, 0), "after the end"},
		{"over-long SessionID", overlong, "over the maximum 8 of sessionIDType"},
		{"21 root certificate IDs", tooMany, "ListOfRootCertificateIDs: undeclared event"},
		{"flipped bits", wrong, "exi: /V2G_Message/Header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := exi.ISO2.Decode(tt.in)
			if err == nil {
				t.Fatal("decoded")
			}
			var e *exi.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *exi.Error", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	// Every proper prefix of a valid stream fails.
	for n := range len(good) - 1 {
		if _, err := exi.ISO2.Decode(good[:n]); err == nil {
			t.Fatalf("prefix of %d bytes decoded", n)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		doc  *exi.Element
		want string
	}{
		{"unknown root", exi.New("Nothing"), "not an element of schema"},
		{"21 root certificate IDs", sample(21), "element RootCertificateID not allowed here"},
		{"missing required attribute", func() *exi.Element {
			d := sample(1)
			d.Child("Body").Child("CertificateInstallationReq").Attrs = nil
			return d
		}(), "element OEMProvisioningCert not allowed here"},
		{"over-long certificate", func() *exi.Element {
			d := sample(1)
			d.Child("Body").Child("CertificateInstallationReq").Child("OEMProvisioningCert").Value = base64.StdEncoding.EncodeToString(make([]byte, 801))
			return d
		}(), "over the maximum 800"},
		{"bad enum", exi.New("V2G_Message",
			exi.New("Header", exi.Text("SessionID", "00")),
			exi.New("Body", exi.New("CertificateInstallationRes", exi.Text("ResponseCode", "Fine")))), `"Fine" is not a value`},
		{"not hex", func() *exi.Element {
			d := sample(1)
			d.Child("Header").Child("SessionID").Value = "zz"
			return d
		}(), "sessionIDType value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := exi.ISO2.Encode(tt.doc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, n := range []int{1, 2, 20} {
		b, err := exi.ISO2.Encode(sample(n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	if b, err := hex.DecodeString("808112b43a3a381d1797bbbbbb973b999737b93397aa2917b1b0b737b734b1b0b616b2bc3497a1ab43a3a381d1797bbbbbb9"); err == nil {
		f.Add(b)
	}
	// A -20 SessionSetupReq (libcbv2g's) seeds the -20 schema.
	if b, err := hex.DecodeString("808c040000000000000000080f2d6ca06209aba6a4a82721a09818181818181818181880"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, s := range []*exi.Schema{exi.ISO2, exi.ISO20} {
			fuzzRoundTrip(t, s, in)
		}
	})
}

// fuzzRoundTrip: what decodes in s must encode again and decode to the same.
func fuzzRoundTrip(t *testing.T, s *exi.Schema, in []byte) {
	for _, frag := range []bool{false, true} {
		var els []*exi.Element
		if frag {
			var err error
			if els, err = s.DecodeFragment(in); err != nil {
				continue
			}
		} else {
			el, err := s.Decode(in)
			if err != nil {
				continue
			}
			els = []*exi.Element{el}
		}
		// What decodes must encode again and decode to the same.
		var out []byte
		var err error
		if frag {
			out, err = s.EncodeFragment(els...)
		} else {
			out, err = s.Encode(els[0])
		}
		if err != nil {
			t.Fatalf("decoded input does not encode: %v", err)
		}
		j1, _ := exi.JSON(els...)
		var again []*exi.Element
		if frag {
			again, err = s.DecodeFragment(out)
		} else {
			var el *exi.Element
			el, err = s.Decode(out)
			again = []*exi.Element{el}
		}
		if err != nil {
			t.Fatalf("re-encoded stream does not decode: %v", err)
		}
		if j2, _ := exi.JSON(again...); !bytes.Equal(j1, j2) {
			t.Fatalf("round trip changed the document:\n%s\n%s", j1, j2)
		}
	}
}

// TestBinaryValues: a value given as bytes encodes exactly as the same
// value in base64 text, reads back through Val, and is refused where the
// schema wants text.
func TestBinaryValues(t *testing.T) {
	cert := bytes.Repeat([]byte{0x30, 0x82}, 300)
	build := func(c *exi.Element) *exi.Element {
		return exi.New("V2G_Message",
			exi.New("Header", exi.Text("SessionID", "0102030405060708")),
			exi.New("Body", exi.New("CertificateInstallationReq", c, exi.New("ListOfRootCertificateIDs",
				exi.New("RootCertificateID", exi.Text("X509IssuerName", "CN=R"), exi.Text("X509SerialNumber", "1")))).WithAttr("Id", "id1")))
	}
	text, err := exi.ISO2.Encode(build(exi.Text("OEMProvisioningCert", base64.StdEncoding.EncodeToString(cert))))
	if err != nil {
		t.Fatal(err)
	}
	bin := exi.Binary("OEMProvisioningCert", cert)
	got, err := exi.ISO2.Encode(build(bin))
	if err != nil || !bytes.Equal(got, text) {
		t.Fatalf("bytes encode to %x, %v; text to %x", got, err, text)
	}
	if bin.Val() != base64.StdEncoding.EncodeToString(cert) {
		t.Error("Val of a binary element is not its base64")
	}
	if _, err := exi.ISO2.Encode(exi.New("V2G_Message",
		exi.New("Header", exi.Binary("SessionID", []byte{1})), exi.New("Body"))); err != nil {
		t.Errorf("hexBinary SessionID as bytes: %v", err)
	}
	if _, err := exi.ISO2.EncodeFragment(exi.Binary("eMAID", []byte("DE8AAC12345678"))); err == nil {
		t.Error("a string value given as bytes was encoded")
	}
	if _, err := exi.ISO2.Encode(build(exi.Binary("OEMProvisioningCert", make([]byte, 801)))); err == nil {
		t.Error("a certificate over its 800-byte maxLength was encoded")
	}
}

// TestJSONRoundTripFragments: what decode prints of a fragment, encode
// takes back to the same bytes, for each signed element of an
// installation answer; eMAID's Id, which the relaxed fragment grammar knows
// in three namespaces, keeps its namespace in the JSON.
func TestJSONRoundTripFragments(t *testing.T) {
	const nsDataTypes = "urn:iso:15118:2:2013:MsgDataTypes"
	for _, frag := range []*exi.Element{
		exi.Text("eMAID", "DE8AAC12345678D").WithAttrNS(nsDataTypes, "Id", "id4"),
		exi.Binary("ContractSignatureEncryptedPrivateKey", bytes.Repeat([]byte{7}, 48)).WithAttr("Id", "id2"),
		exi.Binary("DHpublickey", bytes.Repeat([]byte{4}, 65)).WithAttr("Id", "id3"),
		exi.New("ContractSignatureCertChain", exi.Binary("Certificate", []byte{1, 2, 3}),
			exi.New("SubCertificates", exi.Binary("Certificate", []byte{4}), exi.Binary("Certificate", []byte{5}))).WithAttr("Id", "id1"),
	} {
		want, err := exi.ISO2.EncodeFragment(frag)
		if err != nil {
			t.Fatalf("%s: %v", frag.Name.Local, err)
		}
		els, err := exi.ISO2.DecodeFragment(want)
		if err != nil {
			t.Fatal(err)
		}
		js, err := exi.JSON(els...)
		if err != nil {
			t.Fatal(err)
		}
		back, err := exi.ParseJSON(js)
		if err != nil {
			t.Fatalf("%s: %v\n%s", frag.Name.Local, err, js)
		}
		got, err := exi.ISO2.EncodeFragment(back...)
		if err != nil {
			t.Fatalf("%s: encode what decode printed: %v\n%s", frag.Name.Local, err, js)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: JSON round trip changed the fragment\n%s", frag.Name.Local, js)
		}
	}
}

// FuzzParseJSON: the JSON form pncctl exi encode reads never panics, and
// what it parses prints back to JSON that parses to the same form.
func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"eMAID":{"@{urn:iso:15118:2:2013:MsgDataTypes}Id":"id4","#text":"DE8AAC12345678D"}}`))
	f.Add([]byte(`{"V2G_Message":{"Header":{"SessionID":"00"},"Body":{"A":[{"@Id":"x"},"y"]}}}`))
	f.Add([]byte(`{"a":{"@{}b":"c","@{x":"d"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		els, err := exi.ParseJSON(data)
		if err != nil {
			return
		}
		js, err := exi.JSON(els...)
		if err != nil {
			return // values JSON cannot hold, such as invalid UTF-8
		}
		again, err := exi.ParseJSON(js)
		if err != nil {
			t.Fatalf("what JSON printed does not parse: %v\n%s", err, js)
		}
		js2, err := exi.JSON(again...)
		if err != nil || !bytes.Equal(js, js2) {
			t.Fatalf("JSON form changed on a second round: %v\n%s\n%s", err, js, js2)
		}
	})
}
