// Command pncd is the pncpki server. On first start it initialises its data
// directory (SQLite store and file keys) with a demo hierarchy, as
// 'pncctl init' does; then it serves the API (REST, gRPC, Connect), OCSP,
// CRLs, health and metrics on one port, and with --ocpp-listen the OCPP-J
// proxy for charging stations on another.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/api/est"
	"github.com/pncpki/pncpki/api/oauth"
	"github.com/pncpki/pncpki/api/opnc"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/cmd/internal/firstrun"
	"github.com/pncpki/pncpki/console"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/buildinfo"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/internal/egress"
	"github.com/pncpki/pncpki/internal/periodic"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/checkpoint"
	"github.com/pncpki/pncpki/upstream"
	"github.com/pncpki/pncpki/webhook"
)

// defaultGCPercent is pncd's GOGC unless the environment sets one. pncd's
// live heap is small (tens of MB) and every call allocates, so Go's
// default of 100 collects several times a second under load: 400 cut the
// server CPU per issued certificate by about 15% in bench/api.sh for
// about 12 MB more resident memory.
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := run(os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		return
	} else if err != nil {
		slog.Error("pncd stopped", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("pncd", flag.ContinueOnError)
	st := defineFlags(fs)
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Words pncd knows come first; their flags follow them. Any other
	// word is refused rather than ignored (it used to start a server).
	command := ""
	if fs.NArg() > 0 {
		command = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected argument %q after %s", fs.Arg(0), command)
		}
	}
	if err := applyConfig(fs, *st.configFile); err != nil {
		return err
	}
	switch command {
	case "":
	case "version":
		fmt.Println(buildinfo.Read())
		return nil
	case "healthcheck":
		return healthcheck(*st.listen)
	default:
		return fmt.Errorf("unknown command %q: pncd [flags], pncd version, pncd healthcheck [--listen ADDR] (see pncd -help)", command)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(log)
	bi := buildinfo.Read()
	log.Info("pncd starting", "version", bi.Version, "revision", bi.Revision)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = store.WithActor(ctx, "pncd")

	d, err := openData(ctx, st, log)
	if err != nil {
		return err
	}
	defer d.Close()
	auditKey, err := d.AuditSigner(ctx)
	if err != nil {
		return err
	}
	// Signed checkpoints of the audit chain: at every interval and at a
	// clean shutdown; each is logged whole, so the log is a copy outside
	// the database ('pncctl audit verify --checkpoint').
	takeCheckpoint := func(ctx context.Context) {
		c, err := checkpoint.Take(ctx, d.Store, auditKey, time.Now())
		if err != nil {
			log.Error("audit checkpoint not taken", "err", err)
			return
		}
		log.Info("audit checkpoint", "checkpoint", c)
		if data, err := json.Marshal(c); err == nil {
			if err := d.WriteCheckpoint(data); err != nil {
				log.Error("audit checkpoint not kept in the data directory", "err", err)
			}
		}
	}
	if *st.auditEvery > 0 {
		go periodic.Every(ctx, *st.auditEvery, func() { takeCheckpoint(ctx) })
	}
	defer takeCheckpoint(store.WithActor(context.Background(), "pncd"))
	for _, a := range d.CA.Authorities() {
		log.Info("CA loaded", "name", a.Name, "profile", a.Profile.Name, "subject", a.Cert.Subject.CommonName, "not_after", a.Cert.NotAfter)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pncpki_build_info", Help: "1, labelled with the version of this pncd.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.Go}}, func() float64 { return 1 }))
	var rdb *redis.Client
	ocspOpts := ocsp.Options{CA: d.CA, Store: d.Store, DataDir: d.Path, UseCAKey: *st.ocspCAKey, Logger: log, Registerer: reg,
		CacheBytes: int64(*st.cacheMB) << 20, PreSignInterval: *st.presignEvery, PreSignRate: *st.presignRate}
	if *st.redisURL != "" {
		opt, err := redis.ParseURL(*st.redisURL)
		if err != nil {
			return fmt.Errorf("--redis: %w", err)
		}
		redis.SetLogger(redisLog{log}) // its own lines, as JSON like the rest
		rdb = redis.NewClient(opt)
		defer rdb.Close()
		ocspOpts.Redis = rdb
		log.Info("OCSP shared tier and revocation fan-out through Redis", "addr", opt.Addr)
	}
	resp, err := ocsp.New(ctx, ocspOpts)
	if err != nil {
		return err
	}
	go resp.Run(ctx)

	key, err := auth.LoadOrCreateKey(d.Path, *st.tokenKeyType)
	if err != nil {
		return fmt.Errorf("token key: %w", err)
	}
	var jwks *auth.JWKS
	if *st.jwksURL != "" {
		if *st.jwksIssuer == "" {
			return errors.New("--jwks-url needs --jwks-issuer")
		}
		jwks = &auth.JWKS{URL: *st.jwksURL, Issuer: *st.jwksIssuer, Audience: *st.jwksAudience}
		log.Info("tokens of an external identity provider accepted", "jwks", *st.jwksURL, "issuer", *st.jwksIssuer, "audience", *st.jwksAudience)
	}
	rl := api.RateLimit{Requests: *st.apiRate, Window: time.Minute}
	if rdb != nil {
		rl.Redis = rdb
	}
	allowed, err := egress.ParseNetworks(*st.egressAllow)
	if err != nil {
		return fmt.Errorf("--egress-allow: %w", err)
	}
	// Webhook endpoints and the OCSP responder URLs stations send are
	// tenants' URLs: they reach public addresses and the allowed networks.
	policy := &egress.Policy{Allow: allowed}
	bridge, err := st.oc.bridge(d, resp, reg, log)
	if err != nil {
		return err
	}
	bridge.OCSP.HTTP = policy.Client(5 * time.Second)
	go refresh(ctx, d, resp, bridge, log)
	contracts := &contract.Pool{Store: d.Store, CA: d.CA,
		Revoked: func(ctx context.Context, r *store.Certificate) {
			resp.Revoked(context.WithoutCancel(ctx), r.Issuer, r.Serial)
		}}
	bridge.Contracts = contracts
	events := webhook.NewDispatcher(d.Store, reg, log, policy)
	go events.Run(ctx, 4)
	bridge.AnchorChanged = opnc.RootEvents(events)
	contracts.Changed = func(ctx context.Context, change contract.Change, c *store.Contract) {
		events.ContractChanged(ctx, string(change), c)
	}
	// One client of the upstream ecosystem (and one token) serves EST,
	// contract data, root sync and contract pushes.
	var up *upstream.Client
	if *st.upURL != "" || *st.upEST != "" {
		if up, err = st.upstream(); err != nil {
			return err
		}
	}
	if *st.upEST != "" {
		up.ESTURL = strings.TrimSuffix(*st.upEST, "/")
		d.CA.SetExternal(policies.ISO2SECC, &ca.External{Name: UpstreamCA, URI: up.ESTURL, Enroll: up.Enroll, CACerts: up.CACerts})
		log.Info("SECC certificates are signed by the upstream ecosystem", "est", up.ESTURL, "recorded_as", UpstreamCA)
	}
	installer, err := st.installer(ctx, d, contracts, bridge, up, reg, log)
	if err != nil {
		return err
	}
	if installer != nil {
		bridge.Installer = installer
		if rdb != nil { // replicas share their answers to retried requests and the -20 sessions
			installer.Shared = &contract.RedisAnswers{Client: rdb}
			installer.Sessions = &contract.RedisSessions{Client: rdb}
		}
	}
	apiServer := &api.Server{CA: d.CA, Store: d.Store, Key: key, JWKS: jwks, OCSP: resp, OCPP: bridge, Contracts: contracts, RateLimit: rl, Metrics: api.NewMetrics(reg)}
	apiHandler, err := apiServer.Handler()
	if err != nil {
		return err
	}
	apiServer.WarmCounts(ctx)
	estServer := &est.Server{CA: d.CA, Store: d.Store, Verify: apiServer.VerifyToken, Log: log,
		Revoked: func(ctx context.Context, r *store.Certificate) {
			resp.Revoked(context.WithoutCancel(ctx), r.Issuer, r.Serial)
		}}
	opncServer := &opnc.Server{Verify: apiServer.VerifyToken, Log: log, Pool: contracts, Anchors: bridge.TrustAnchors, Roots: bridge, Events: events}
	if installer != nil {
		opncServer.Installer = installer
	}
	tokens := &oauth.Server{Store: d.Store, Key: key, Log: log}
	sessionKey, err := console.LoadOrCreateSessionKey(d.Path)
	if err != nil {
		// keys/ read-only without the key ('pncctl init' makes it): this
		// replica's sessions then last only as long as it runs.
		log.Warn("console: no session key in the data directory; sessions are this process's only", "err", err)
		sessionKey = make([]byte, 32)
		rand.Read(sessionKey)
	}
	cons, err := console.New(console.Options{API: apiHandler, Verify: apiServer.VerifyToken, OAuth: tokens,
		OCSP: &ocsp.Client{Local: resp}, SessionKey: sessionKey, Log: log, Health: health(d, rdb, *st.upURL)})
	if err != nil {
		return err
	}
	mount := st.mounts(apiServer, estServer, opncServer, tokens, cons)

	ln, err := net.Listen("tcp", *st.listen)
	if err != nil {
		return err
	}
	// HTTP/1.1 and unencrypted HTTP/2, so gRPC clients work without TLS in
	// front; put TLS in a proxy or load balancer.
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols:         protocols,
		Handler:           newHandler(d, resp, apiHandler, rdb, reg, log, mount),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    serverMaxHeaderBytes, // handler.go answers past MaxHeaderBytes
	}
	log.Info("pncd listening", "addr", ln.Addr().String(), "data", d.Path, "public_url", d.Config.PublicURL,
		"healthz", "http://"+ln.Addr().String()+"/healthz", "crl", "http://"+ln.Addr().String()+"/crl/{issuer}.crl",
		"ocsp", "http://"+ln.Addr().String()+"/ocsp", "api", "http://"+ln.Addr().String()+"/v1", "token_key", auth.KeyFile(d.Path))
	if *st.pprofListen != "" {
		pln, err := net.Listen("tcp", *st.pprofListen)
		if err != nil {
			return fmt.Errorf("--pprof-listen: %w", err)
		}
		defer servePprof(pln, log).Close()
	}
	errc := make(chan error, 2)
	ocppSrv, err := st.oc.serve(bridge, log, errc)
	if err != nil {
		return err
	}
	switch {
	case *st.tlsCert != "" && *st.tlsKey != "":
		srv.Protocols = nil // HTTP/1.1 and HTTP/2 over TLS
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if *st.clientAuth {
			// API client certificates (profile api/client) are issued
			// under the CSMS root; without one, a bearer token is needed.
			srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
			srv.TLSConfig.ClientCAs = bridge.Anchors.Pool(ocppsec.UseCSMS)
			srv.TLSConfig.VerifyConnection = apiServer.VerifyConnection
		}
		go func() { errc <- srv.ServeTLS(ln, *st.tlsCert, *st.tlsKey) }()
	case *st.clientAuth:
		return errors.New("--tls-client-auth needs --tls-cert and --tls-key")
	case *st.tlsCert != "" || *st.tlsKey != "":
		return errors.New("--tls-cert and --tls-key go together")
	default:
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ocppSrv != nil {
		ocppSrv.Close() // WebSocket sessions are hijacked: Shutdown would not end them
	}
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// UpstreamCA is the name SECC certificates that the upstream ecosystem
// signed are recorded under.
const UpstreamCA = "upstream-cpo"

// refresh picks up CAs that pncctl added to the data directory, rotates
// delegated OCSP responder certificates that are due and reloads the trust
// anchors other replicas changed.
func refresh(ctx context.Context, d *datadir.Dir, resp *ocsp.Responder, b *ocppsec.Bridge, log *slog.Logger) {
	periodic.Every(ctx, time.Minute, func() {
		if err := d.CA.Reload(ctx); err != nil {
			log.Error("reload CAs", "err", err)
			return
		}
		if err := resp.Reload(ctx); err != nil {
			log.Error("reload OCSP signers", "err", err)
		}
		if err := b.RefreshAnchors(ctx); err != nil {
			log.Error("reload trust anchors", "err", err)
		}
	})
}

// AdminTokenFile is where the first start leaves an administrator token.
const AdminTokenFile = firstrun.AdminTokenFile

// writeAdminToken mints a 30-day administrator token on first start, so
// that the demo can be driven at once; it is written with mode 0600 and
// audited, and its path (not its value) is logged.
func writeAdminToken(ctx context.Context, d *datadir.Dir, key *auth.Key, log *slog.Logger) error {
	path, err := firstrun.WriteAdminToken(store.WithActor(ctx, "pncd"), d, key)
	if err != nil {
		return err
	}
	log.Info("wrote an administrator token for the demo (valid 30 days); use it as 'Authorization: Bearer $(cat FILE)', mint others with 'pncctl token create'", "file", path)
	return nil
}

// openData opens pncd's data directory: it refuses a missing or empty
// one unless a new PKI is meant to be made there (the default
// directory's first start, or --init), saves a first start's public URL
// (--public-url, else where pncd listens) and warns of URLs relying
// parties may not reach.
func openData(ctx context.Context, st *settings, log *slog.Logger) (*datadir.Dir, error) {
	fresh := datadir.Fresh(*st.data)
	// A new PKI only where one is meant to be: the default directory's
	// first start (go run ./cmd/pncd on a fresh machine) or --init. A
	// mistyped --data or an unmounted volume must not become a new PKI
	// with its own root and administrator token.
	mayCreate := *st.init || fresh && isDefaultData(*st.data)
	if fresh && !mayCreate {
		return nil, fmt.Errorf("data directory %s is missing or empty: start pncd with --data naming an existing data directory (is the volume mounted?), "+
			"create a PKI there first with 'pncctl --data %s init', or pass --init to let pncd create a demo PKI there", *st.data, *st.data)
	}
	if *st.publicURL != "" || fresh {
		if err := os.MkdirAll(*st.data, 0o700); err != nil {
			return nil, err
		}
		cfg, err := datadir.ReadConfig(*st.data)
		if err != nil {
			return nil, err
		}
		cfg.PublicURL = *st.publicURL
		if cfg.PublicURL == "" {
			// The certificates carry it: on a first start it is where
			// pncd listens, unless --public-url says otherwise.
			cfg.PublicURL = publicURLOf(*st.listen)
		}
		if err := datadir.WriteConfig(*st.data, cfg); err != nil {
			return nil, fmt.Errorf("--public-url: %w", err)
		}
	}
	d, err := datadir.OpenWith(ctx, *st.data, *st.storeURL, ca.Options{})
	if err != nil {
		return nil, err
	}
	d, err = initData(ctx, d, st, mayCreate, log)
	if err != nil {
		return nil, err
	}
	if w := d.Config.HTTPSWarning(); w != "" {
		log.Warn(w)
	}
	if w := listenMismatch(d.Config.PublicURL, *st.listen); w != "" {
		log.Warn(w)
	}
	return d, nil
}

// initData creates a demo PKI in an open data directory without CAs
// where mayCreate allows it, and refuses the directory otherwise. It
// closes d on failure.
func initData(ctx context.Context, d *datadir.Dir, st *settings, mayCreate bool, log *slog.Logger) (_ *datadir.Dir, err error) {
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	done, err := d.Initialized(ctx)
	if err != nil {
		return nil, err
	}
	if !done && !mayCreate {
		return nil, fmt.Errorf("data directory %s has no CAs (its store %s is empty): create them with 'pncctl --data %s init' (or init --import), or pass --init to let pncd create a demo PKI", d.Path, storeName(d.Config.Store), *st.data)
	}
	if !done {
		log.Warn("first start: creating a DEMO CA hierarchy and an administrator token; for production create or import your own CAs with 'pncctl init' instead", "data", d.Path, "organization", *st.org)
		if err := d.Init(ctx, datadir.InitConfig{Organization: *st.org}); err != nil {
			return nil, fmt.Errorf("initialise %s: %w", d.Path, err)
		}
		if err := d.CA.Reload(ctx); err != nil {
			return nil, err
		}
		key, err := auth.LoadOrCreateKey(d.Path, *st.tokenKeyType)
		if err != nil {
			return nil, fmt.Errorf("token key: %w", err)
		}
		if err := writeAdminToken(ctx, d, key, log); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// defaultData is the data directory pncd uses without --data: the only
// one whose first start creates a PKI unasked.
const defaultData = "./pncd-data"

// isDefaultData reports whether dir names the default data directory.
func isDefaultData(dir string) bool {
	return filepath.Clean(dir) == filepath.Clean(defaultData)
}

// storeName names a data directory's store for messages.
func storeName(store string) string {
	if store == "" {
		return "pncpki.db"
	}
	return store
}

// settings are pncd's flags; every one can also come from the environment
// (PNCPKI_<NAME>) or the --config file.
type settings struct {
	data, listen, org, publicURL, storeURL, configFile, tlsCert, tlsKey, redisURL *string
	tokenKeyType, jwksURL, jwksIssuer, jwksAudience, estPrefixes, opncPrefix      *string
	cpsKey, cpsCert, opncPools, opcpPrefix, pprofListen, egressAllow              *string
	upURL, upProtocol, upTokenURL, upClientID, upSecret, upCA                     *string
	upRootSync                                                                    *time.Duration
	upEST, upCert, upKey                                                          *string
	upPush                                                                        *bool
	ocspCAKey, clientAuth, init                                                   *bool
	cacheMB, presignRate, apiRate                                                 *int
	presignEvery, auditEvery                                                      *time.Duration
	oc                                                                            ocppFlags
}

// defineFlags defines pncd's flags on fs.
func defineFlags(fs *flag.FlagSet) *settings {
	s := &settings{}
	s.data = fs.String("data", defaultData, "data directory (SQLite store and file keys); a missing or empty one other than the default is refused unless --init")
	s.init = fs.Bool("init", false, "create a demo PKI (and an administrator token) if the data directory has none; without it only the default directory's first start does")
	s.listen = fs.String("listen", "127.0.0.1:8080", "HTTP listen address")
	s.org = fs.String("init-org", "pncpki demo", "organization of the CAs created on first start")
	s.publicURL = fs.String("public-url", "", "base URL relying parties reach pncd at (e.g. http://pki.example.com), saved in the data directory; issued certificates carry {url}/ocsp and {url}/crl/{ca}.crl (default: the saved one, else "+datadir.DefaultPublicURL+")")
	s.ocspCAKey = fs.Bool("ocsp-ca-key", false, "sign OCSP responses with the CA keys instead of delegated responder certificates")
	s.storeURL = fs.String("store", "", "PostgreSQL URL of the store, shared by replicas (empty: SQLite in the data directory)")
	fs.Func("postgres", "the same as --store", func(v string) error { *s.storeURL = v; return nil })
	s.configFile = fs.String("config", os.Getenv("PNCPKI_CONFIG"), "YAML file of settings, keys are flag names; the command line and then PNCPKI_* variables take precedence")
	s.cacheMB = fs.Int("ocsp-cache-mb", 64, "bound of the in-process OCSP response cache, in MiB")
	s.presignEvery = fs.Duration("ocsp-presign-interval", 5*time.Minute, "how often every live certificate's OCSP responses are checked and pre-signed (negative: never)")
	s.pprofListen = fs.String("pprof-listen", "", "address of Go's profiler endpoints /debug/pprof/ on a listener of their own (e.g. 127.0.0.1:6060; empty: off); keep it on loopback")
	s.presignRate = fs.Int("ocsp-presign-rate", 200, "pre-signed OCSP responses per second at most, so refreshes are spread out")
	s.tlsCert = fs.String("tls-cert", "", "PEM certificate (chain) to serve HTTPS with; with --tls-key")
	s.tlsKey = fs.String("tls-key", "", "PEM private key of --tls-cert (mode 0600)")
	s.apiRate = fs.Int("api-rate", 1200, "API requests per minute per tenant (0: unlimited); shared through Redis when --redis is set")
	s.redisURL = fs.String("redis", "", "Redis URL (redis://host:6379/0) of the shared tier: OCSP, revocation fan-out, installation answers and ISO 15118-20 sessions")
	s.clientAuth = fs.Bool("tls-client-auth", false, "also accept API client certificates (profile api/client, issued under the CSMS root) instead of bearer tokens; needs --tls-cert")
	s.estPrefixes = fs.String("est-prefixes", est.DefaultPrefix, "comma-separated base paths of the EST endpoints ({prefix}/{cpo|mo|oem|cps}/cacerts|simpleenroll|simplereenroll[/ISO15118-2]), e.g. /.well-known/est,/est")
	s.opncPrefix = fs.String("opnc-pki-prefix", "/opnc/v1/pki", "base path of the OPNC PKI API (GET /est/cacerts and POST /est/simpleenroll with ?caDomain=, POST /pki/revokeCertificate); empty: not served")
	s.opncPools = fs.String("opnc-prefix", opnc.DefaultPrefix, "base path of the OPNC pool APIs: POST {prefix}/ccp/signedcontractdata, GET {prefix}/rcp/rootcertificates[/{id}]; empty: not served")
	s.upURL = fs.String("upstream-url", "", "base URL of a Plug and Charge ecosystem's Open Plug&Charge pools (OPNC: before /ccp and /rcp; OPCP: before /v1): contract data for vehicles without a contract here, and its root pool as trust anchors")
	s.upCert = fs.String("upstream-client-cert", "", "PEM certificate (chain) pncpki presents to the upstream over TLS (mTLS), with --upstream-client-key; besides or instead of client credentials")
	s.upKey = fs.String("upstream-client-key", "", "PEM private key of --upstream-client-cert (mode 0600)")
	s.upEST = fs.String("upstream-est-url", "", "EST base of the upstream ecosystem (before /cpo/simpleenroll, e.g. https://eco.example/.well-known/est): SECC certificates are then signed by the ecosystem's CPO CA, with the --upstream-* credentials")
	s.upPush = fs.Bool("upstream-push-contracts", false, "push the eMSP contracts pncpki holds to the upstream's contract pool (signed contract data for the vehicle's provisioning certificate, from pncpki's pool or the upstream's); cancelled ones are deleted there")
	s.upRootSync = fs.Duration("upstream-root-sync", time.Hour, "how often the trust anchors follow the upstream's root pool (roots it adds are added, roots it drops removed)")
	s.upProtocol = fs.String("upstream-protocol", "opnc", "the upstream's protocol: opnc or opcp")
	s.upTokenURL = fs.String("upstream-token-url", "", "the upstream's OAuth2 token endpoint (client credentials)")
	s.upClientID = fs.String("upstream-client-id", "", "client ID at the upstream")
	s.upSecret = fs.String("upstream-client-secret", "", "client secret at the upstream (better in PNCPKI_UPSTREAM_CLIENT_SECRET than on the command line)")
	s.upCA = fs.String("upstream-ca", "", "PEM file of the CAs of the upstream's TLS certificate (default: the system roots)")
	s.opcpPrefix = fs.String("opcp-prefix", opnc.DefaultOPCPPrefix, "base path of the OPCP 1.0 pool APIs (Hubject's shapes): POST {prefix}/v1/ccp/signedContractData, GET {prefix}/v1/root/rootCerts[/{id}]; empty: not served")
	s.tokenKeyType = fs.String("token-key-type", auth.KeyECDSA, "type of the token key created on first start: ecdsa (ES256) or ed25519 (EdDSA); an existing key keeps its type")
	s.jwksURL = fs.String("jwks-url", "", "JWK set URL of an external identity provider whose tokens (ES256 or EdDSA, with kid, tenant and role claims) are accepted too")
	s.jwksIssuer = fs.String("jwks-issuer", "", "the iss of that provider's tokens")
	s.jwksAudience = fs.String("jwks-audience", auth.Audience, "the aud that provider's tokens must carry")
	s.cpsKey = fs.String("cps-key", "", "key URI of the CPS leaf that signs ISO 15118-2 installation responses (softkms:path=FILE or pkcs11:...; default: the one first start made, "+datadir.CPSLeafKey+")")
	s.cpsCert = fs.String("cps-cert", "", "PEM certificate of --cps-key (default: cps-leaf.pem in the data directory)")
	s.auditEvery = fs.Duration("audit-checkpoint-interval", time.Hour, "how often the head of the audit chain is signed with the audit key (config.json audit_key, default keys/audit.key) into a checkpoint, also taken at every clean shutdown (0: only then)")
	s.egressAllow = fs.String("egress-allow", "", "comma-separated networks (CIDR) that tenant-set URLs (webhook endpoints, OCSP responder URLs from stations and vehicles) may reach although they are not public, e.g. 10.20.0.0/16; loopback, private, link-local and other non-public addresses are refused otherwise")
	s.oc.register(fs)
	return s
}

// redisLog routes go-redis's own messages (reconnects during an outage)
// into pncd's JSON log instead of plain lines on stderr.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// mounts adds EST, the Open Plug&Charge interfaces, the OAuth token
// endpoint, and gRPC reflection and health to pncd's router. EST and Open Plug&Charge draw on the tenant's
// one API budget (api.Server.Limit): a tenant whose budget is spent cannot
// go on issuing or reading through another door. The token endpoint
// throttles failed authentications itself.
func (st *settings) mounts(apiServer *api.Server, estServer *est.Server, opncServer *opnc.Server, tokens *oauth.Server, cons http.Handler) func(chi.Router) {
	return func(r chi.Router) {
		r.Handle(oauth.Path, tokens)
		// The console's own calls go through the API handler, rate limit
		// included.
		if cons != nil {
			r.Handle(console.Prefix+"*", cons)
			r.Get("/console", http.RedirectHandler(console.Prefix, http.StatusMovedPermanently).ServeHTTP)
		}
		for path, h := range apiServer.Introspection() {
			r.Handle(path+"*", h)
		}
		r = r.With(func(next http.Handler) http.Handler { return apiServer.Limit(next) })
		for _, p := range strings.Split(*st.estPrefixes, ",") {
			if p = strings.TrimSpace(p); p != "" {
				estServer.Mount(r, p)
			}
		}
		if *st.opncPrefix != "" {
			estServer.MountOPNC(r, *st.opncPrefix)
		}
		if *st.opncPools != "" {
			opncServer.Mount(r, *st.opncPools)
		}
		if *st.opcpPrefix != "" {
			opncServer.MountOPCP(r, *st.opcpPrefix)
		}
	}
}

// health reports on the store, Redis and the upstream for the console's
// overview, as /readyz judges them.
func health(d *datadir.Dir, rdb *redis.Client, upstreamURL string) func(context.Context) []console.HealthCheck {
	return func(ctx context.Context) []console.HealthCheck {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		store := console.HealthCheck{Name: "store", OK: true, Detail: "answers"}
		if _, err := d.Store.CAs(ctx); err != nil {
			store.OK, store.Detail = false, "does not answer"
		}
		cache := console.HealthCheck{Name: "Redis", OK: true, Detail: "not used (OCSP answers and rate limits per replica)"}
		if rdb != nil {
			cache.Detail = "answers"
			if err := rdb.Ping(ctx).Err(); err != nil {
				cache.OK, cache.Detail = false, "does not answer"
			}
		}
		up := console.HealthCheck{Name: "upstream", OK: true, Detail: "none configured"}
		if upstreamURL != "" {
			up.Detail = upstreamURL
		}
		return []console.HealthCheck{store, cache, up}
	}
}

// localAddr is the address this host reaches pncd at when it listens on
// listen: an unspecified host is taken as the loopback address.
func localAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// publicURLOf is the public URL of a first start: where pncd listens.
func publicURLOf(listen string) string {
	addr, err := localAddr(listen)
	if err != nil {
		return datadir.DefaultPublicURL
	}
	return "http://" + addr
}

// listenMismatch warns when the saved public URL names this host
// (loopback) but another port than pncd listens on: the certificates would
// send relying parties where nothing answers. A public name behind a proxy
// is not compared.
func listenMismatch(publicURL, listen string) string {
	u, err := url.Parse(publicURL)
	if err != nil {
		return ""
	}
	_, lport, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	ip := net.ParseIP(host)
	if (host == "localhost" || ip != nil && ip.IsLoopback()) && port != lport {
		return fmt.Sprintf("the public URL %s, which issued certificates carry, is not where pncd listens (%s): OCSP and CRL requests will not reach it; start with --listen on its port, or set --public-url", publicURL, listen)
	}
	return ""
}

// healthcheck is `pncd healthcheck`: it exits 0 when pncd at listen
// answers /readyz, as the container's HEALTHCHECK runs it.
func healthcheck(listen string) error {
	addr, err := localAddr(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("not ready: HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Println("ready")
	return nil
}
