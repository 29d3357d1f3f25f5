package main

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/buildinfo"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
)

// newHandler routes pncd's endpoints: health, CRLs, OCSP and metrics. The
// API shares this router.
func newHandler(d *datadir.Dir, resp *ocsp.Responder, apiHandler http.Handler, rdb *redis.Client, reg *prometheus.Registry, log *slog.Logger, mount func(chi.Router)) http.Handler {
	return limitHeaders(newRoutes(d, resp, apiHandler, rdb, reg, log, mount))
}

// newRoutes is pncd's router, which the OpenAPI test walks.
func newRoutes(d *datadir.Dir, resp *ocsp.Responder, apiHandler http.Handler, rdb *redis.Client, reg *prometheus.Registry, log *slog.Logger, mount func(chi.Router)) *chi.Mux {
	r := chi.NewRouter()
	if mount != nil {
		mount(r) // EST and the Open Plug&Charge interfaces
	}
	// The API: REST under /v1, gRPC/Connect under the service names, with a
	// request ID and an access log line per call.
	logged := requestLog(apiHandler, log)
	r.Handle("/v1/*", logged)
	r.Handle("/{service:pncpki\\.v1\\.[A-Za-z]+}/*", logged)
	ocspHandler := resp.Handler("/ocsp")
	r.Handle("/ocsp", ocspHandler)
	r.Handle("/ocsp/*", ocspHandler)
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	r.Get("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		doc, err := api.OpenAPI()
		if err != nil {
			log.Error("OpenAPI document", "err", err)
			api.WriteError(w, http.StatusInternalServerError, "internal", "the OpenAPI document is broken")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	})
	page := api.OpenAPIPage()
	r.Get("/openapi", http.RedirectHandler("/openapi/", http.StatusMovedPermanently).ServeHTTP)
	r.Get("/openapi/*", page.ServeHTTP)
	r.Get("/healthz", func(w http.ResponseWriter, req *http.Request) {
		if _, err := d.Store.CAs(req.Context()); err != nil {
			log.Error("health check: store", "err", err)
			api.WriteError(w, http.StatusServiceUnavailable, "store.unavailable", "the store does not answer")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"status": "ok", "version": buildinfo.Read().Version})
	})
	// Ready: the store answers, at least one CA is loaded, and Redis
	// answers when it is configured.
	r.Get("/readyz", func(w http.ResponseWriter, req *http.Request) {
		if _, err := d.Store.CAs(req.Context()); err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, "store.unavailable", "the store does not answer")
			return
		}
		if len(d.CA.Authorities()) == 0 {
			api.WriteError(w, http.StatusServiceUnavailable, "ca.none", "no CA is loaded")
			return
		}
		// Redis is optional for correctness (OCSP falls back to the store)
		// but a replica that lost it should not take new traffic.
		if rdb != nil {
			if err := rdb.Ping(req.Context()).Err(); err != nil {
				api.WriteError(w, http.StatusServiceUnavailable, "redis.unavailable", "Redis does not answer")
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	r.Get("/crl/{file}", func(w http.ResponseWriter, req *http.Request) {
		issuer, ok := strings.CutSuffix(chi.URLParam(req, "file"), ".crl")
		if !ok || !ca.ValidName(issuer) {
			api.WriteError(w, http.StatusNotFound, api.CodeRouteNotFound, "want /crl/{issuer}.crl")
			return
		}
		der, err := d.CA.CurrentCRL(req.Context(), issuer)
		switch {
		case ca.CodeOf(err) == ca.CodeIssuerUnknown:
			api.WriteError(w, http.StatusNotFound, ca.CodeIssuerUnknown, "no CA named "+issuer)
			return
		case ca.CodeOf(err) == ca.CodeCAOffline:
			// An offline root's CRL is signed where its key is and
			// imported ('pncctl crl import'); none has been yet.
			api.WriteError(w, http.StatusNotFound, ca.CodeCAOffline, "no CRL of the offline CA "+issuer+" has been imported")
			return
		case err != nil:
			log.Error("CRL", "issuer", issuer, "err", err)
			api.WriteError(w, http.StatusInternalServerError, "internal", "cannot produce the CRL")
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Header().Set("Cache-Control", "max-age=300")
		if crl, err := x509.ParseRevocationList(der); err == nil {
			w.Header().Set("Last-Modified", crl.ThisUpdate.UTC().Format(http.TimeFormat))
		}
		w.Write(der)
	})
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		api.WriteError(w, http.StatusNotFound, api.CodeRouteNotFound, "no such route")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		api.WriteError(w, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, "the route does not take this method")
	})
	return r
}

// MaxHeaderBytes bounds a request's headers. net/http's own bound is set
// higher (serverMaxHeaderBytes) because it answers with plain text; this
// one answers 431 in pncd's JSON error shape.
const (
	MaxHeaderBytes       = 16 << 10
	serverMaxHeaderBytes = 64 << 10
)

// limitHeaders refuses requests whose headers are larger than
// MaxHeaderBytes.
func limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := len(r.RequestURI)
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		if n > MaxHeaderBytes {
			api.WriteError(w, http.StatusRequestHeaderFieldsTooLarge, "request.headers_too_large", "the request's headers are larger than 16 KiB")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// validRequestID accepts a caller's X-Request-ID if it is short and plain.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// requestLog gives every API call a request ID (the caller's X-Request-ID
// when it is plain, else a new one), returns it in X-Request-ID, and logs
// one line per call with it.
func requestLog(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-ID", id)
		start := time.Now()
		// The path as called: the REST transcoder rewrites r.URL to its
		// RPC route.
		path := r.URL.Path
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "api", slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("path", path), slog.Int("status", rec.status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000), slog.String("remote", r.RemoteAddr))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush and Unwrap keep streaming and http.ResponseController working
// through the recorder (gRPC needs both).
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
