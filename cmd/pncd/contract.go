package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/internal/periodic"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/upstream"
)

// installer builds the contract service behind Get15118EVCertificate. It
// needs a CPS key: the one first start made, or --cps-key/--cps-cert.
// Without one (a hierarchy imported without CPS) Get15118EVCertificate
// answers NoContractService and pncd says so at start.
func (s *settings) installer(ctx context.Context, d *datadir.Dir, pool *contract.Pool, b *ocppsec.Bridge, up *upstream.Client, reg prometheus.Registerer, log *slog.Logger) (*contract.Installer, error) {
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
	// The ISO 15118-20 CPS leaves 'pncctl init --iso15118-20' made: they
	// sign -20 answers, one per variant (P-521, Ed448).
	var cps20 []contract.CPS
	for _, l := range datadir.CPS20Leaves {
		cert20 := filepath.Join(d.Path, l.Cert)
		if !fileExists(cert20) {
			continue
		}
		c, err := contract.LoadCPS(ctx, d.CA, "softkms:path="+l.Key, cert20)
		if err != nil {
			return nil, fmt.Errorf("ISO 15118-20 CPS: %w", err)
		}
		cps20 = append(cps20, c)
	}
	in := &contract.Installer{
		Pool:    pool,
		CPS:     []contract.CPS{cps},
		CPS20:   cps20,
		Log:     log,
		Metrics: contract.NewMetrics(reg),
		OEMRoots: func(context.Context) ([]*x509.Certificate, []*x509.Certificate, error) {
			return b.TrustAnchors()[ocppsec.UseOEM], nil, nil
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
	}
	if up != nil && up.BaseURL != "" {
		in.Upstream = up.SignedContractData
		if *s.upPush {
			pusher := upstream.NewPusher(up, in, reg, log)
			changed := pool.Changed
			pool.Changed = func(ctx context.Context, change contract.Change, c *store.Contract) {
				if changed != nil {
					changed(ctx, change, c)
				}
				pusher.Changed(ctx, change, c)
			}
			log.Info("eMSP contracts are pushed to the upstream's contract pool", "upstream", up.BaseURL)
		}
		// The ecosystem's roots join the trust anchors before pncd
		// serves, and follow its pool while it runs.
		if *s.upRootSync <= 0 {
			return nil, fmt.Errorf("--upstream-root-sync %s: want a positive duration", *s.upRootSync)
		}
		syncRoots(ctx, up, b, log)
		go periodic.Every(ctx, *s.upRootSync, func() { syncRoots(ctx, up, b, log) })
	}
	log.Info("contract service ready", "cps", cps.Chain[0].Subject.CommonName, "oem roots", len(b.TrustAnchors()[ocppsec.UseOEM]))
	warnBudget(d, in, log)
	return in, nil
}

// warnBudget logs a warning for every CPS chain and MO Sub-CA 2
// combination whose largest installation answer exceeds the data
// directory's planned exiResponse limit: vehicles given it get
// ResponseTooLarge on stations without a larger limit of their own.
func warnBudget(d *datadir.Dir, in *contract.Installer, log *slog.Logger) {
	var cps []contract.SizedChain
	for _, c := range in.CPS {
		cps = append(cps, contract.SizeCPS(c.Chain))
	}
	combs, err := contract.Budget(d.CA, d.CA.Authorities(), cps)
	if err != nil {
		log.Warn("installation answer sizes not known", "err", err)
		return
	}
	limit := d.Config.EXILimit()
	for _, c := range combs {
		if over := c.Over(limit); over > 0 {
			log.Warn("installation answers of this CPS and MO Sub-CA 2 exceed the exiResponse limit: only stations with a larger limit get them",
				"cps", c.CPS, "mo", c.MO, "base64", c.Base64, "limit", limit, "over", over)
		}
	}
}

// upstream builds the client of --upstream-url.
func (s *settings) upstream() (*upstream.Client, error) {
	if *s.upProtocol != upstream.OPNC && *s.upProtocol != upstream.OPCP {
		return nil, fmt.Errorf("--upstream-protocol %q: want opnc or opcp", *s.upProtocol)
	}
	tlsConf, err := upstream.TLSConfig(*s.upCA, *s.upCert, *s.upKey)
	if err != nil {
		return nil, err
	}
	return &upstream.Client{BaseURL: strings.TrimSuffix(*s.upURL, "/"), Protocol: *s.upProtocol, TokenURL: *s.upTokenURL,
		ClientID: *s.upClientID, ClientSecret: *s.upSecret,
		HTTP: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}}, nil
}

// syncRoots makes the trust anchors from the upstream's root pool follow
// it; a failure keeps the anchors as they are.
func syncRoots(ctx context.Context, up *upstream.Client, b *ocppsec.Bridge, log *slog.Logger) {
	roots, err := up.Roots(ctx)
	if err != nil {
		log.Warn("upstream root pool not read; the trust anchors stay as they are", "upstream", up.BaseURL, "err", err)
		return
	}
	added, removed, err := b.SyncAnchors(ctx, up.BaseURL, roots)
	if err != nil {
		log.Error("upstream root pool not stored", "upstream", up.BaseURL, "err", err)
		return
	}
	log.Info("upstream root pool synced", "upstream", up.BaseURL, "protocol", up.Protocol, "roots",
		len(roots[ocppsec.UseV2G])+len(roots[ocppsec.UseMO])+len(roots[ocppsec.UseOEM]), "added", added, "removed", removed)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
