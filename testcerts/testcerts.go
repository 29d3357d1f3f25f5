// Package testcerts generates complete, deterministic test PKIs: the four
// ISO 15118-2 hierarchies (V2G/CPO, CPS, MO, OEM) and the OCPP one, with a
// leaf of every kind. The same seed and time give the same keys and the same
// certificates, byte for byte. Tests of every package use it, and
// 'pncctl testpki' writes it to disk for openssl, OCPP and EV simulators.
//
// The keys are derived from the seed: never use a test PKI in production.
package testcerts

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/policies"
)

// Entry is one certificate of a test PKI with its key.
type Entry struct {
	Name    string // file-friendly name, e.g. "cpo-sub2"
	Profile *policies.Profile
	Parent  string // issuing entry, "" for roots
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey // nil in the Ed448 PKI
	// Ed448Key is the key of an entry of the Ed448 PKI, and X448Key the
	// key agreement key of its OEM provisioning certificate.
	Ed448Key ed448.PrivateKey
	X448Key  *x448.Key
}

// Signer is the entry's key, ECDSA or Ed448.
func (e *Entry) Signer() crypto.Signer {
	if e.Ed448Key != nil {
		return e.Ed448Key
	}
	return e.Key
}

// PKI is a generated test PKI.
type PKI struct {
	Seed    uint64
	Entries []*Entry // issuers before what they issue
	byName  map[string]*Entry
}

// Get returns an entry by name and panics when it is not there: the names
// are fixed by this package.
func (p *PKI) Get(name string) *Entry {
	e, ok := p.byName[name]
	if !ok {
		panic("testcerts: no entry " + name)
	}
	return e
}

// Chain returns the issuers of an entry, nearest first, root last,
// excluding the entry itself.
func (p *PKI) Chain(name string) []*x509.Certificate {
	var out []*x509.Certificate
	for e := p.Get(name); e.Parent != ""; {
		e = p.Get(e.Parent)
		out = append(out, e.Cert)
	}
	return out
}

// Root returns the root entry above an entry.
func (p *PKI) Root(name string) *Entry {
	e := p.Get(name)
	for e.Parent != "" {
		e = p.Get(e.Parent)
	}
	return e
}

// Identifiers used by the test PKI's leaves.
const (
	Organization = "pncpki Test"
	OperatorID   = "DE*PNC"
	EVSEID       = "DE*PNC*E00001*1"
	SECCID       = "DEPNCS0000000000000000000000000000000011"
	ProviderID   = "DE-PNC"
	PCID         = "WMIPNCTEST0000001"
	StationID    = "PNCTEST-CS-0001"
	CSMSHost     = "csms.pncpki.example"
)

// EMAID is the contract leaf's EMAID (with its check digit).
var EMAID = func() string {
	e, err := policies.ParseEMAID("DEPNC000000001")
	if err != nil {
		panic(err)
	}
	return e.String()
}()

type spec struct {
	name, profile, parent, cn string
	org                       string
}

var layout = []spec{
	{"v2g-root", policies.ISO2V2GRoot, "", "pncpki Test V2G Root CA", Organization},
	{"cpo-sub1", policies.ISO2CPOSub1, "v2g-root", "pncpki Test CPO Sub-CA 1", Organization},
	{"cpo-sub2", policies.ISO2CPOSub2, "cpo-sub1", "pncpki Test CPO Sub-CA 2", Organization},
	{"secc", policies.ISO2SECC, "cpo-sub2", EVSEID, Organization},
	{"secc-id", policies.ISO2SECC, "cpo-sub2", SECCID, Organization},
	{"cps-sub1", policies.ISO2CPSSub1, "v2g-root", "pncpki Test CPS Sub-CA 1", Organization},
	{"cps-sub2", policies.ISO2CPSSub2, "cps-sub1", "pncpki Test CPS Sub-CA 2", Organization},
	{"cps-leaf", policies.ISO2CPSLeaf, "cps-sub2", "pncpki Test CPS Leaf", Organization},
	{"mo-root", policies.ISO2MORoot, "", "pncpki Test MO Root CA", Organization},
	{"mo-sub1", policies.ISO2MOSub1, "mo-root", "pncpki Test MO Sub-CA 1", Organization},
	{"mo-sub2", policies.ISO2MOSub2, "mo-sub1", "pncpki Test MO Sub-CA 2", Organization},
	{"contract", policies.ISO2Contract, "mo-sub2", "", Organization},
	{"oem-root", policies.ISO2OEMRoot, "", "pncpki Test OEM Root CA", Organization},
	{"oem-sub1", policies.ISO2OEMSub1, "oem-root", "pncpki Test OEM Sub-CA 1", Organization},
	{"oem-sub2", policies.ISO2OEMSub2, "oem-sub1", "pncpki Test OEM Sub-CA 2", Organization},
	{"oem-prov", policies.ISO2OEMProv, "oem-sub2", PCID, Organization},
	{"csms-root", policies.OCPPCSMSRoot, "", "pncpki Test CSMS Root CA", Organization},
	{"charging-station", policies.OCPPChargingStation, "csms-root", StationID, Organization},
	{"csms-server", policies.OCPPCSMSServer, "csms-root", CSMSHost, Organization},
}

// Key derives the P-256 key of a named entry from the seed.
func Key(seed uint64, name string) *ecdsa.PrivateKey {
	for i := uint32(0); ; i++ {
		h := sha256.New()
		fmt.Fprintf(h, "pncpki testcerts v1\x00%d\x00%s\x00", seed, name)
		binary.Write(h, binary.BigEndian, i)
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), h.Sum(nil))
		if err == nil {
			return k
		}
		// out of range scalar (probability ~2^-32): derive the next one
	}
}

// layout20 is the ISO 15118-20 test PKI (secp521r1 variant): the roles of
// the -2 one under the same names, with P-521 keys.
var layout20 = []spec{
	{"v2g-root", policies.ISO20V2GRoot, "", "pncpki Test V2G Root CA 20", Organization},
	{"cpo-sub1", policies.ISO20CPOSub1, "v2g-root", "pncpki Test CPO Sub-CA 1 20", Organization},
	{"cpo-sub2", policies.ISO20CPOSub2, "cpo-sub1", "pncpki Test CPO Sub-CA 2 20", Organization},
	{"secc", policies.ISO20SECC, "cpo-sub2", SECCID, Organization},
	{"cps-sub1", policies.ISO20CPSSub1, "v2g-root", "pncpki Test CPS Sub-CA 1 20", Organization},
	{"cps-sub2", policies.ISO20CPSSub2, "cps-sub1", "pncpki Test CPS Sub-CA 2 20", Organization},
	{"cps-leaf", policies.ISO20CPSLeaf, "cps-sub2", "pncpki Test CPS Leaf 20", Organization},
	{"mo-root", policies.ISO20MORoot, "", "pncpki Test MO Root CA 20", Organization},
	{"mo-sub1", policies.ISO20MOSub1, "mo-root", "pncpki Test MO Sub-CA 1 20", Organization},
	{"mo-sub2", policies.ISO20MOSub2, "mo-sub1", "pncpki Test MO Sub-CA 2 20", Organization},
	{"contract", policies.ISO20Contract, "mo-sub2", "", Organization},
	{"oem-root", policies.ISO20OEMRoot, "", "pncpki Test OEM Root CA 20", Organization},
	{"oem-sub1", policies.ISO20OEMSub1, "oem-root", "pncpki Test OEM Sub-CA 1 20", Organization},
	{"oem-sub2", policies.ISO20OEMSub2, "oem-sub1", "pncpki Test OEM Sub-CA 2 20", Organization},
	{"oem-prov", policies.ISO20OEMProv, "oem-sub2", PCID, Organization},
}

// Key521 derives the P-521 key of a named entry of the ISO 15118-20 test
// PKI from the seed.
func Key521(seed uint64, name string) *ecdsa.PrivateKey {
	for i := uint32(0); ; i++ {
		var scalar []byte
		for half := byte(0); half < 2; half++ {
			h := sha512.New()
			fmt.Fprintf(h, "pncpki testcerts-20 v1\x00%d\x00%s\x00%d\x00", seed, name, half)
			binary.Write(h, binary.BigEndian, i)
			scalar = h.Sum(scalar)
		}
		scalar = scalar[:66]
		scalar[0] &= 0x01 // 521 bits
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P521(), scalar)
		if err == nil {
			return k
		}
		// out of range scalar: derive the next one
	}
}

// keyMaterial derives n bytes for a named entry's key from the seed.
func keyMaterial(seed uint64, kind, name string, n int) []byte {
	return sha3.SumSHAKE256([]byte(fmt.Sprintf("pncpki testcerts-20 %s v1\x00%d\x00%s", kind, seed, name)), n)
}

// KeyEd448 derives the Ed448 key of a named entry of the ISO 15118-20
// Ed448 test PKI from the seed.
func KeyEd448(seed uint64, name string) ed448.PrivateKey {
	return ed448.NewKeyFromSeed(keyMaterial(seed, "ed448", name, ed448.SeedSize))
}

// KeyX448 derives the X448 key agreement key of a named entry of the ISO
// 15118-20 Ed448 test PKI from the seed.
func KeyX448(seed uint64, name string) *x448.Key {
	var k x448.Key
	copy(k[:], keyMaterial(seed, "x448", name, x448.Size))
	return &k
}

// Generate builds the test PKI for seed, valid from now (truncated to the
// day, so a day's runs agree).
func Generate(seed uint64, now time.Time) (*PKI, error) {
	return generate(seed, now, layout, func(seed uint64, name string) crypto.Signer { return Key(seed, name) })
}

// Generate20 builds the ISO 15118-20 test PKI (secp521r1 variant) for
// seed, valid from now (truncated to the day).
func Generate20(seed uint64, now time.Time) (*PKI, error) {
	return generate(seed, now, layout20, func(seed uint64, name string) crypto.Signer { return Key521(seed, name) })
}

// Generate20Ed448 builds the ISO 15118-20 test PKI of the Ed448 variant
// for seed, valid from now (truncated to the day): the entries of
// Generate20 with Ed448 keys, and an X448 key in the OEM provisioning
// certificate.
func Generate20Ed448(seed uint64, now time.Time) (*PKI, error) {
	var ed []spec
	for _, s := range layout20 {
		s.profile = policies.Ed448Variant(s.profile)
		s.cn = strings.Replace(s.cn, " 20", " 20 Ed448", 1)
		ed = append(ed, s)
	}
	return generate(seed, now, ed, func(seed uint64, name string) crypto.Signer { return KeyEd448(seed, name) })
}

func generate(seed uint64, now time.Time, layout []spec, key func(uint64, string) crypto.Signer) (*PKI, error) {
	var rs [32]byte
	binary.BigEndian.PutUint64(rs[:], seed)
	day := now.UTC().Truncate(24 * time.Hour)
	b := &ca.Builder{
		Now:      func() time.Time { return day },
		Rand:     rand.NewChaCha8(rs), // serials; signatures are RFC 6979
		Backdate: time.Hour,
	}
	pki := &PKI{Seed: seed, byName: map[string]*Entry{}}
	for _, s := range layout {
		p, err := policies.Lookup(s.profile)
		if err != nil {
			return nil, err
		}
		e := &Entry{Name: s.name, Profile: p, Parent: s.parent}
		switch k := key(seed, s.name).(type) {
		case *ecdsa.PrivateKey:
			e.Key = k
		case ed448.PrivateKey:
			e.Ed448Key = k
		}
		cn := s.cn
		if cn == "" {
			cn = EMAID
		}
		subj := policies.Subject{CommonName: cn, Organization: s.org, Country: "DE"}
		if p.AltX448Key {
			e.X448Key = KeyX448(seed, s.name)
			var pub x448.Key
			x448.KeyGen(&pub, e.X448Key)
			subj.AltX448Key = &pub
		}
		if p.CN == policies.CNFQDN {
			subj.DNSNames = []string{cn}
		}
		var issuer *ca.Authority
		if s.parent != "" {
			pe := pki.byName[s.parent]
			issuer = &ca.Authority{Name: pe.Name, Profile: pe.Profile, Cert: pe.Cert, Signer: pe.Signer()}
		}
		cert, err := b.Certify(p, issuer, e.Signer(), e.Signer().Public(), subj, policies.Period{})
		if err != nil {
			return nil, fmt.Errorf("testcerts %s: %w", s.name, err)
		}
		e.Cert = cert
		pki.Entries = append(pki.Entries, e)
		pki.byName[e.Name] = e
	}
	return pki, nil
}
