package contract

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/pncpki/pncpki/internal/ed448x509"
)

// chainCache remembers which OEM sub-CAs were verified to a root, so that
// a provisioning certificate costs one signature check instead of one per
// certificate of its chain: every vehicle of an OEM shares the same
// sub-CAs. An entry lives at most chainTTL and never past a certificate of
// its chain; it is used only while its root is still a trust anchor.
type chainCache struct {
	mu sync.Mutex
	m  map[[32]byte]chainEntry
}

type chainEntry struct {
	root    [32]byte  // SHA-256 of the root's DER
	until   time.Time // earliest of the chain's notAfter and the TTL
	pathLen []int     // per CA above the sub-CA: how many CAs it allows below it, -1: any
}

const (
	chainTTL       = 10 * time.Minute
	maxChainsCache = 1024
)

// verify checks leaf's chain to one of roots through inter and returns
// the certificate that issued leaf. A sub-CA chain verified before is not
// verified again; anything unusual (name constraints, no sub-CA) takes
// x509's full verification.
func (cc *chainCache) verify(leaf *x509.Certificate, roots, inter []*x509.Certificate, now time.Time) (*x509.Certificate, error) {
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, errors.New("the certificate is outside its validity")
	}
	for _, c := range inter {
		if !slices.Equal(c.RawSubject, leaf.RawIssuer) || ed448x509.CheckSignature(leaf, c) != nil {
			continue
		}
		if cc.known(c, roots, now) {
			return c, nil
		}
	}
	chain, err := verifyChain(leaf, roots, inter, now)
	if err != nil {
		return nil, err
	}
	if len(chain) > 2 {
		cc.remember(chain[1:], now)
	}
	return chain[1], nil
}

// verifyChain verifies leaf to one of roots through inter and returns the
// chain, leaf first: with crypto/x509, or for Ed448 certificates (which it
// cannot check) with ed448x509.
func verifyChain(leaf *x509.Certificate, roots, inter []*x509.Certificate, now time.Time) ([]*x509.Certificate, error) {
	if ed448x509.SignedWithEd448(leaf) {
		return ed448x509.Verify(leaf, roots, inter, now)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: pool(roots), Intermediates: pool(inter), CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, err
	}
	return chains[0], nil
}

func pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// remember caches a verified sub-CA chain (sub-CA first, root last) unless
// a CA in it constrains names: those need the leaf's names checked.
func (cc *chainCache) remember(chain []*x509.Certificate, now time.Time) {
	until := now.Add(chainTTL)
	var pathLen []int
	for _, c := range chain {
		if c.PermittedDNSDomainsCritical || len(c.PermittedDNSDomains)+len(c.ExcludedDNSDomains)+len(c.PermittedIPRanges)+
			len(c.ExcludedIPRanges)+len(c.PermittedEmailAddresses)+len(c.ExcludedEmailAddresses)+len(c.PermittedURIDomains)+len(c.ExcludedURIDomains) > 0 {
			return
		}
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
		l := -1
		if c.BasicConstraintsValid && (c.MaxPathLen > 0 || c.MaxPathLenZero) {
			l = c.MaxPathLen
		}
		pathLen = append(pathLen, l)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil || len(cc.m) >= maxChainsCache {
		cc.m = map[[32]byte]chainEntry{}
	}
	cc.m[sha256.Sum256(chain[0].Raw)] = chainEntry{root: sha256.Sum256(chain[len(chain)-1].Raw), until: until, pathLen: pathLen}
}

// known says whether sub-CA c was verified to a root that is still among
// roots, and whether its chain allows c to sign a leaf: c itself and each
// CA above it must permit the CAs between it and the leaf.
func (cc *chainCache) known(c *x509.Certificate, roots []*x509.Certificate, now time.Time) bool {
	cc.mu.Lock()
	e, ok := cc.m[sha256.Sum256(c.Raw)]
	cc.mu.Unlock()
	if !ok || now.After(e.until) || now.Before(c.NotBefore) {
		return false
	}
	for i, l := range e.pathLen {
		if l >= 0 && i > l { // i CAs lie between this one and the leaf
			return false
		}
	}
	return slices.ContainsFunc(roots, func(r *x509.Certificate) bool { return sha256.Sum256(r.Raw) == e.root })
}

// parsedChains keeps parsed certificate lists by the SHA-256 of their DER:
// the chain registered with a provisioning certificate is the OEM's, the
// same for every vehicle, and parsing it on each request cost more than
// hashing it. The certificates are shared and never changed.
type parsedChains struct {
	mu sync.Mutex
	m  map[[32]byte][]*x509.Certificate
}

func (p *parsedChains) parse(der []byte) ([]*x509.Certificate, error) {
	k := sha256.Sum256(der)
	p.mu.Lock()
	cs, ok := p.m[k]
	p.mu.Unlock()
	if ok {
		return cs, nil
	}
	cs, err := x509.ParseCertificates(der)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.m == nil || len(p.m) >= maxChainsCache {
		p.m = map[[32]byte][]*x509.Certificate{}
	}
	p.m[k] = cs
	p.mu.Unlock()
	return cs, nil
}
