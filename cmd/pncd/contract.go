package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/ocsp"
)

// installer builds the contract service behind Get15118EVCertificate. It
// needs a CPS key: the one first start made, or --cps-key/--cps-cert.
// Without one (a hierarchy imported without CPS) Get15118EVCertificate
// answers NoContractService and pncd says so at start.
func (s *settings) installer(ctx context.Context, d *datadir.Dir, pool *contract.Pool, b *ocppsec.Bridge, reg prometheus.Registerer, log *slog.Logger) (ocppsec.Installer, error) {
	keyURI, certFile := *s.cpsKey, *s.cpsCert
	explicit := keyURI != "" || certFile != ""
	if keyURI == "" {
		keyURI = "softkms:path=" + datadir.CPSLeafKey
	}
	if certFile == "" {
		certFile = filepath.Join(d.Path, "cps-leaf.pem")
	}
	if !explicit {
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			log.Warn("no CPS certificate: Get15118EVCertificate answers NoContractService; give --cps-key and --cps-cert", "looked for", certFile)
			return nil, nil
		}
	}
	cps, err := contract.LoadCPS(ctx, d.CA, keyURI, certFile)
	if err != nil {
		return nil, fmt.Errorf("CPS: %w", err)
	}
	log.Info("contract service ready", "cps", cps.Chain[0].Subject.CommonName, "oem roots", len(b.Anchors[ocppsec.UseOEM]))
	return &contract.Installer{
		Pool:    pool,
		CPS:     []contract.CPS{cps},
		Log:     log,
		Metrics: contract.NewMetrics(reg),
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return b.Anchors[ocppsec.UseOEM], nil, nil
		},
		CheckOEM: func(ctx context.Context, leaf, issuer *x509.Certificate) error {
			if len(leaf.OCSPServer) == 0 {
				return nil // the OEM publishes no OCSP: nothing to ask
			}
			r, err := b.OCSP.Check(ctx, leaf, issuer, leaf.OCSPServer[0])
			if err != nil {
				return err
			}
			if r.Status == ocsp.Revoked {
				return contract.ErrRevoked
			}
			return nil
		},
	}, nil
}
