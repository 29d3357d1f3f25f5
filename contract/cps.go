package contract

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/policies"
)

// LoadCPS loads a CPS identity: the leaf certificate from a PEM file, its
// key through the CA service's key managers (softkms or PKCS#11 URI), and
// its chain from the CA that issued it.
func LoadCPS(ctx context.Context, svc *ca.Service, keyURI, certFile string) (CPS, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return CPS{}, fmt.Errorf("CPS certificate: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return CPS{}, fmt.Errorf("CPS certificate %s: no PEM certificate", certFile)
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return CPS{}, fmt.Errorf("CPS certificate %s: %w", certFile, err)
	}
	profile := policies.ISO2CPSLeaf
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P521() {
		profile = policies.ISO20CPSLeaf // signs ISO 15118-20 installation answers
	} else if ed448x509.PublicKey(leaf) != nil {
		profile = policies.ISO20EdCPSLeaf // ... of the Ed448 variant
	}
	p, _ := policies.Lookup(profile)
	if vs := p.Check(leaf, policies.SECCBoth); len(vs) > 0 {
		return CPS{}, fmt.Errorf("CPS certificate %s: %v", certFile, vs)
	}
	signer, err := svc.LoadSigner(ctx, keyURI)
	if err != nil {
		return CPS{}, fmt.Errorf("CPS key: %w", err)
	}
	if pub, ok := ed448x509.CertificateKey(leaf).(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(signer.Public()) {
		return CPS{}, fmt.Errorf("CPS key %s does not belong to %s", keyURI, certFile)
	}
	for _, a := range svc.Authorities() {
		if ed448x509.CheckSignature(leaf, a.Cert) == nil {
			return CPS{Signer: signer, Chain: append([]*x509.Certificate{leaf}, a.Chain...)}, nil
		}
	}
	return CPS{}, fmt.Errorf("CPS certificate %s: no CA of this pncpki issued it", certFile)
}
