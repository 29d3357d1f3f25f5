package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/ocsp"
)

// ocppFlags configure the OCPP bridge and the OCPP-J proxy.
type ocppFlags struct {
	listen, upstream          string
	profile                   int
	tlsCert, tlsKey           string
	upstreamCA                string
	upstreamUser, upstreamPwd string
	anchors                   string
	failOpen, invalidate      bool
	cnIdentity                bool
	manage, deleteRoots       bool
	rootCheck, tlsFailOpen    bool
	signLimit                 int
	signWindow                time.Duration
	renewWindow, renewEvery   time.Duration
}

func (f *ocppFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "ocpp-listen", "", "address of the OCPP-J proxy for charging stations (e.g. :9000; empty: no proxy)")
	fs.StringVar(&f.upstream, "ocpp-upstream", "", "the CSMS the proxy forwards to (ws:// or wss://; a station's connection goes to {url}/{stationId})")
	fs.IntVar(&f.profile, "ocpp-security-profile", 1, "station side security profile: 1 Basic auth, 2 TLS and Basic auth, 3 mutual TLS with pncpki-issued station certificates")
	fs.StringVar(&f.tlsCert, "ocpp-tls-cert", "", "PEM certificate of the proxy's TLS listener (profiles 2 and 3)")
	fs.StringVar(&f.tlsKey, "ocpp-tls-key", "", "PEM private key of --ocpp-tls-cert")
	fs.StringVar(&f.upstreamCA, "ocpp-upstream-ca", "", "PEM file of the CAs that sign the upstream CSMS's TLS certificate (default: the system roots)")
	fs.StringVar(&f.upstreamUser, "ocpp-upstream-user", "", "Basic auth user for the upstream (default: pass on each station's own Authorization)")
	fs.StringVar(&f.upstreamPwd, "ocpp-upstream-password", "", "Basic auth password for the upstream (better in PNCPKI_OCPP_UPSTREAM_PASSWORD than on the command line)")
	fs.StringVar(&f.anchors, "trust-anchors", "", "directory of further trust anchors: {dir}/V2GRootCertificate/*.pem, MORootCertificate, CSMSRootCertificate, ManufacturerRootCertificate, OEMRootCertificate (our own roots are always included)")
	fs.BoolVar(&f.failOpen, "authorize-ocsp-fail-open", false, "let Authorize accept a contract certificate whose OCSP status cannot be learned (default: fail closed, CertChainError)")
	fs.BoolVar(&f.tlsFailOpen, "station-tls-ocsp-fail-open", false, "let a security profile 3 station connect when its certificate's OCSP status cannot be learned (default: refused)")
	fs.BoolVar(&f.invalidate, "authorize-invalidate", false, "the proxy sets idTokenInfo.status Invalid when the contract certificate is not Accepted")
	fs.BoolVar(&f.cnIdentity, "station-cn-identity", false, "accept the station identity as the CN of its charging-station certificate besides its serial number")
	fs.BoolVar(&f.manage, "ocpp-manage", true, "the proxy syncs a registered station's roots after an accepted BootNotification and sends renewal triggers")
	fs.BoolVar(&f.rootCheck, "ocpp-additional-root-check", false, "stations check a new CSMS root against the old one (OCPP AdditionalRootCertificateCheck): root sync sends rollover certificates ('pncctl ca cross-certify')")
	fs.BoolVar(&f.deleteRoots, "ocpp-delete-unknown-roots", false, "root sync also deletes V2G, MO and OEM roots that are not trust anchors here (CSMS and manufacturer roots are never deleted)")
	fs.IntVar(&f.signLimit, "ocpp-sign-limit", 20, "SignCertificate requests a station may make per --ocpp-sign-window on one replica; more are Rejected (RateLimited)")
	fs.DurationVar(&f.signWindow, "ocpp-sign-window", time.Hour, "the window of --ocpp-sign-limit")
	fs.DurationVar(&f.renewWindow, "ocpp-renewal-window", ocppsec.DefaultRenewalWindow, "ask a station for a new CSR when a certificate of it expires within this")
	fs.DurationVar(&f.renewEvery, "ocpp-renewal-check", 24*time.Hour, "how often the proxy checks a connected station's certificates for renewal")
}

// bridge builds the OCPP bridge used by the API and the proxy.
func (f *ocppFlags) bridge(d *datadir.Dir, resp *ocsp.Responder, reg prometheus.Registerer, log *slog.Logger) (*ocppsec.Bridge, error) {
	anchors, err := ocppsec.AnchorsFrom(context.Background(), d.CA, d.Store, f.anchors)
	if err != nil {
		return nil, fmt.Errorf("--trust-anchors: %w", err)
	}
	for _, u := range ocppsec.Uses {
		if n := len(anchors[u]); n > 0 {
			log.Info("trust anchors", "use", u, "count", n)
		}
	}
	b := &ocppsec.Bridge{CA: d.CA, Store: d.Store, OCSP: &ocsp.Client{Local: resp}, Anchors: anchors, Log: log, Metrics: ocppsec.NewMetrics(reg),
		Policy: ocppsec.Policy{AuthorizeFailOpen: f.failOpen, InvalidateRevoked: f.invalidate, StationCNIdentity: f.cnIdentity,
			DeleteUnknownRoots: f.deleteRoots, RenewalWindow: f.renewWindow, AdditionalRootCertificateCheck: f.rootCheck, StationTLSFailOpen: f.tlsFailOpen,
			SignLimit: f.signLimit, SignWindow: f.signWindow, EXIResponseLimit: d.Config.EXIResponseLimit}}
	// Roots added at run time (root certificate pool, upstream sync) are
	// in the store; other replicas' changes are picked up every minute.
	if err := b.RefreshAnchors(context.Background()); err != nil {
		return nil, err
	}
	return b, nil
}

// serve starts the proxy when --ocpp-listen is set; errors end pncd.
func (f *ocppFlags) serve(b *ocppsec.Bridge, log *slog.Logger, errc chan<- error) (*http.Server, error) {
	if f.listen == "" {
		return nil, nil
	}
	if f.upstream == "" {
		return nil, errors.New("--ocpp-listen needs --ocpp-upstream")
	}
	if f.profile < 1 || f.profile > 3 {
		return nil, errors.New("--ocpp-security-profile is 1, 2 or 3")
	}
	if f.profile > 1 && (f.tlsCert == "" || f.tlsKey == "") {
		return nil, fmt.Errorf("security profile %d needs --ocpp-tls-cert and --ocpp-tls-key", f.profile)
	}
	p := &ocppsec.Proxy{Bridge: b, Upstream: f.upstream, SecurityProfile: f.profile, UpstreamUser: f.upstreamUser,
		UpstreamPassword: f.upstreamPwd, StationCAs: b.Anchors.Pool(ocppsec.UseCSMS), Manage: f.manage, RenewEvery: f.renewEvery, Log: log}
	if f.upstreamCA != "" {
		pem, err := os.ReadFile(f.upstreamCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ocpp-upstream-ca %s: no PEM certificate", f.upstreamCA)
		}
		p.UpstreamTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
	if f.profile > 1 {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("--ocpp-tls-cert: %w", err)
		}
		// OCPP 2.0.1 A00.FR.317: TLS 1.2 at least.
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if f.profile == 3 {
			srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven // the proxy answers 401 without one
			srv.TLSConfig.ClientCAs = p.StationCAs
		}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	log.Info("OCPP-J proxy listening", "addr", ln.Addr().String(), "upstream", f.upstream, "security_profile", f.profile)
	go func() { errc <- srv.Serve(ln) }()
	return srv, nil
}
