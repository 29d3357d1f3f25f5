package contract

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Limits of OCPP's exiResponse in base64 characters: the official 2.0.1
// schema's (the 1.6 Plug and Charge profile and has.to.be's take it over),
// and the least a 2.1 station accepts.
const (
	LimitOCPP201 = 5600
	LimitOCPP21  = 17000
)

// WorstEMAID is the longest eMAID a contract certificate carries: 15
// characters, as pncpki's contract CNs always have the check digit.
const WorstEMAID = "DE8AAC12345678D"

// CertSize is one certificate of an answer: what it is, and its size in
// bytes counted with its longest signature (ca.LongestSize), or, for one
// not issued yet, the largest it can be (Bound).
type CertSize struct {
	Name  string `json:"name"`
	Bytes int    `json:"bytes"`
	Bound bool   `json:"bound,omitempty"`
}

// SizedChain is a chain of an answer, leaf first, roots left out.
type SizedChain []CertSize

// Combination is the largest answer a vehicle can get for one CPS chain
// and one MO Sub-CA 2: its certificates, and its size in EXI bytes and
// base64 characters (the larger of installation and update, with the
// longest eMAID and SessionID).
type Combination struct {
	CPS          string     `json:"cps"`
	MO           string     `json:"mo"`
	Certificates []CertSize `json:"certificates"`
	Bytes        int        `json:"exi_bytes"`
	Base64       int        `json:"base64"`
}

// Over is by how many base64 characters c exceeds limit (0 if it fits).
func (c Combination) Over(limit int) int { return max(0, c.Base64-limit) }

// WithoutRoot is chain without its last certificate when that is a root
// (issued by itself: the same name, and no other key named as its
// issuer's): roots are never sent, and an imported hierarchy may end in a
// sub-CA whose root pncpki does not hold. It runs on every installation,
// so it compares names rather than verify a signature.
func WithoutRoot(chain []*x509.Certificate) []*x509.Certificate {
	if n := len(chain); n > 1 {
		last := chain[n-1]
		if bytes.Equal(last.RawSubject, last.RawIssuer) &&
			(len(last.AuthorityKeyId) == 0 || bytes.Equal(last.AuthorityKeyId, last.SubjectKeyId)) {
			return chain[:n-1]
		}
	}
	return chain
}

// SizeCPS sizes the chain of a CPS identity (leaf first, as pncd's
// --cps-cert holds it); the root is left out.
func SizeCPS(chain []*x509.Certificate) SizedChain {
	if len(chain) == 0 {
		return nil
	}
	return sizeChain(chain, fmt.Sprintf("CPS leaf %q", chain[0].Subject.CommonName))
}

// sizeChain sizes a chain of certificates held (leaf first), each named
// by names or else by its CN; the root is left out.
func sizeChain(chain []*x509.Certificate, names ...string) SizedChain {
	chain = WithoutRoot(chain)
	out := make(SizedChain, len(chain))
	for i, c := range chain {
		name := c.Subject.CommonName
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		out[i] = CertSize{Name: name, Bytes: ca.LongestSize(c)}
	}
	return out
}

// caChain sizes an authority's chain, each CA named as pncpki names it.
func caChain(a *ca.Authority, auths []*ca.Authority) SizedChain {
	names := make([]string, len(a.Chain))
	for i, c := range a.Chain {
		for _, o := range auths {
			if o.Cert.Equal(c) {
				names[i] = o.Name
			}
		}
	}
	return sizeChain(a.Chain, names...)
}

// CPSChains are the CPS chains of the authorities auths (ones of svc, and
// maybe one about to be created): the CPS leaves svc issued that are
// still live, and for a CPS Sub-CA 2 without one, the largest leaf
// with the CN leafCN it could issue.
func CPSChains(ctx context.Context, svc *ca.Service, auths []*ca.Authority, leafCN string) ([]SizedChain, error) {
	live := false
	leaves, err := svc.Store().Certificates(ctx, store.Filter{Profile: policies.ISO2CPSLeaf, Revoked: &live})
	if err != nil {
		return nil, fmt.Errorf("CPS leaves: %w", err)
	}
	now := svc.Now()
	var out []SizedChain
	for _, a := range auths {
		if a.Profile.Name != policies.ISO2CPSSub2 {
			continue
		}
		issued := false
		for _, rec := range leaves {
			if rec.Issuer != a.Name || now.After(rec.NotAfter) {
				continue
			}
			leaf, err := x509.ParseCertificate(rec.DER)
			if err != nil || ed448x509.CheckSignature(leaf, a.Cert) != nil {
				continue // a leaf of an earlier CA of that name
			}
			out = append(out, append(SizedChain{{Name: fmt.Sprintf("CPS leaf %q", leaf.Subject.CommonName), Bytes: ca.LongestSize(leaf)}}, caChain(a, auths)...))
			issued = true
		}
		if !issued && a.Signer != nil {
			n, err := svc.MaxDERFrom(a, policies.ISO2CPSLeaf, throwaway.Public(), policies.Subject{CommonName: leafCN}, policies.Period{})
			if err != nil {
				return nil, err
			}
			out = append(out, append(SizedChain{{Name: fmt.Sprintf("CPS leaf %q", leafCN), Bytes: n, Bound: true}}, caChain(a, auths)...))
		}
	}
	return out, nil
}

// throwaway is the public key the largest contract and CPS leaf are sized
// for: every P-256 key encodes to the same length.
var throwaway, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

// Budget is the largest answer for every combination of a CPS chain of
// cps and an MO Sub-CA 2 of auths that can issue: the contract
// certificate counted at the largest size its MO Sub-CA 2 can give it
// (longest eMAID, longest validity, longest signature).
func Budget(svc *ca.Service, auths []*ca.Authority, cps []SizedChain) ([]Combination, error) {
	contractProfile, _ := policies.Lookup(policies.ISO2Contract)
	var out []Combination
	for _, mo := range auths {
		if mo.Profile.Name != policies.ISO2MOSub2 || mo.Signer == nil || svc.Now().After(mo.Cert.NotAfter) {
			continue
		}
		n, err := svc.MaxDERFrom(mo, policies.ISO2Contract, throwaway.Public(), policies.Subject{CommonName: WorstEMAID}, contractProfile.MaxValidity)
		if err != nil {
			return nil, err
		}
		moChain := append(SizedChain{{Name: "contract " + WorstEMAID, Bytes: n, Bound: true}}, caChain(mo, auths)...)
		for _, c := range cps {
			comb := Combination{CPS: c[0].Name, MO: mo.Name, Certificates: append(append([]CertSize(nil), c...), moChain...)}
			for _, action := range []Action{ActionInstall, ActionUpdate} {
				size, err := AnswerSize(action, sizes(c), sizes(moChain), len(WorstEMAID), maxSessionIDLen)
				if err != nil {
					return nil, err
				}
				comb.Bytes = max(comb.Bytes, size)
			}
			comb.Base64 = base64.StdEncoding.EncodedLen(comb.Bytes)
			out = append(out, comb)
		}
	}
	return out, nil
}

func sizes(c SizedChain) []int {
	out := make([]int, len(c))
	for i, s := range c {
		out[i] = s.Bytes
	}
	return out
}

// BudgetError refuses a hierarchy some of whose answers exceed Limit.
type BudgetError struct {
	Limit int
	Over  []Combination
}

func (e *BudgetError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "installation answers of this hierarchy would exceed OCPP's exiResponse limit of %d base64 characters", e.Limit)
	for _, c := range e.Over {
		over := c.Over(e.Limit)
		certs := make([]string, len(c.Certificates))
		for i, s := range c.Certificates {
			certs[i] = fmt.Sprintf("%s %d B", s.Name, s.Bytes)
			if s.Bound {
				certs[i] = fmt.Sprintf("%s up to %d B", s.Name, s.Bytes)
			}
		}
		fmt.Fprintf(&b, "\n  %s with %s: up to %d characters, %d over (%d bytes of EXI); certificates: %s",
			c.CPS, c.MO, c.Base64, over, (over*3+3)/4, strings.Join(certs, ", "))
	}
	b.WriteString("\nshorten the organization name or the public URL, or plan for stations that accept more (--exi-limit 7500) and set their limit")
	return b.String()
}

// CheckBudget refuses the combinations over limit with a *BudgetError.
func CheckBudget(combs []Combination, limit int) error {
	var over []Combination
	for _, c := range combs {
		if c.Over(limit) > 0 {
			over = append(over, c)
		}
	}
	if len(over) > 0 {
		return &BudgetError{Limit: limit, Over: over}
	}
	return nil
}
