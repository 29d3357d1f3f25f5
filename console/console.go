// Package console is pncd's web console for PKI administrators and
// tenants: server-rendered pages (html/template, no script needed) at
// /console/ on the API port, from files embedded in the binary. It is a
// client of the API: every page calls the API handler in process with the
// session's token, so a tenant sees exactly what the API lets it see.
package console

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/pncpki/pncpki/api/apiclient"
	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocsp"
)

//go:embed templates static
var files embed.FS

// Prefix is where pncd mounts the console.
const Prefix = "/console/"

// Options configure the console.
type Options struct {
	// API is the API handler (REST, Connect, gRPC) the pages call.
	API http.Handler
	// Verify checks a token given at sign-in, as the API does.
	Verify func(token string) (*auth.Claims, error)
	// OAuth is the OAuth2 token endpoint, for signing in with client
	// credentials; nil offers tokens only.
	OAuth http.Handler
	// OCSP answers the live status shown on a certificate's page.
	OCSP *ocsp.Client
	// SessionKey seals the session cookies (LoadOrCreateSessionKey).
	SessionKey []byte
	// Health reports on what pncd depends on (store, Redis, upstream),
	// for the overview; nil shows none.
	Health func(context.Context) []HealthCheck
	Log    *slog.Logger
	Now    func() time.Time
}

// HealthCheck is one dependency's state.
type HealthCheck struct {
	Name   string
	OK     bool
	Detail string
}

// Handler serves the console.
type Handler struct {
	opts    Options
	aead    cipher.AEAD
	csrfKey []byte
	pages   map[string]*template.Template
	mux     *http.ServeMux
}

// New makes the console's handler.
func New(opts Options) (*Handler, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	aead, csrfKey, err := newAEAD(opts.SessionKey)
	if err != nil {
		return nil, err
	}
	h := &Handler{opts: opts, aead: aead, csrfKey: csrfKey, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	funcs := template.FuncMap{"date": date, "days": days, "bar": bar, "join": strings.Join}
	for _, p := range []string{"login", "overview", "certificates", "certificate", "issue", "audit", "error", "stations", "station", "contracts", "anchors", "access", "exi", "charts"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", p, err)
		}
		h.pages[p] = t
	}
	static, _ := fs.Sub(files, "static")
	h.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /console/login", h.loginPage)
	h.mux.HandleFunc("POST /console/login", h.login)
	h.mux.HandleFunc("POST /console/logout", h.signedIn(h.logout))
	h.mux.HandleFunc("GET /console/{$}", h.signedIn(h.overview))
	h.mux.HandleFunc("GET /console/certificates", h.signedIn(h.certificates))
	h.mux.HandleFunc("GET /console/certificates/{issuer}/{serial}", h.signedIn(h.certificate))
	h.mux.HandleFunc("POST /console/certificates/{issuer}/{serial}/revoke", h.signedIn(h.revoke))
	h.mux.HandleFunc("GET /console/issue", h.signedIn(h.issuePage))
	h.mux.HandleFunc("POST /console/issue", h.signedIn(h.issue))
	h.mux.HandleFunc("GET /console/audit", h.signedIn(h.audit))
	h.mux.HandleFunc("POST /console/audit/verify", h.signedIn(h.auditVerify))
	h.mux.HandleFunc("GET /console/stations", h.signedIn(h.stations))
	h.mux.HandleFunc("GET /console/stations/{id}", h.signedIn(h.station))
	h.mux.HandleFunc("GET /console/contracts", h.signedIn(h.contracts))
	h.mux.HandleFunc("GET /console/anchors", h.signedIn(h.anchors))
	h.mux.HandleFunc("GET /console/access", h.signedIn(h.access))
	h.mux.HandleFunc("GET /console/exi", h.signedIn(h.exiPage))
	h.mux.HandleFunc("POST /console/exi", h.signedIn(h.exiInspect))
	h.mux.HandleFunc("GET /console/charts", h.signedIn(h.charts))
	h.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, nil, http.StatusNotFound, "route.not_found", "no such console page")
	})
	return h, nil
}

// csp keeps every page to this origin: no inline script or style, no
// frames, forms posted only here.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// maxForm bounds a posted form (a CSR upload is a few KiB).
const maxForm = 64 << 10

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/console/static/") {
		w.Header().Set("Cache-Control", "no-store")
	}
	if r.Method == http.MethodPost {
		// A form from another site: refused before anything else, also
		// at sign-in (login CSRF). Browsers send Origin on every POST.
		if o := r.Header.Get("Origin"); o == "" || !sameOrigin(o, r) {
			h.fail(w, r, nil, http.StatusForbidden, "csrf.origin", "the form was not posted from this console")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	}
	h.mux.ServeHTTP(w, r)
}

// sameOrigin reports whether origin names the host r was sent to. The
// scheme is not compared: behind a proxy that ends TLS, the browser's
// https origin reaches pncd over http.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.Host == r.Host
}

// page is what every template gets.
type page struct {
	Title   string
	Session *session
	CSRF    string
	Nav     string
	Data    any
	Error   *failure
}

type failure struct{ Code, Message string }

func (h *Handler) render(w http.ResponseWriter, status int, name string, p *page) {
	if p.Session != nil {
		p.CSRF = h.csrf(p.Session)
	}
	var b strings.Builder
	if err := h.pages[name].Execute(&b, p); err != nil {
		h.opts.Log.Error("console: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

// fail shows a refusal with its stable code: the API's for an API error.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *session, status int, code, msg string) {
	h.render(w, status, "error", &page{Title: "Refused", Session: s, Error: &failure{code, msg}})
}

// apiFail shows an API refusal, with the HTTP status that fits its code.
func (h *Handler) apiFail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	code, msg := apiCode(err)
	status := http.StatusBadGateway
	var ce *connect.Error
	if errors.As(err, &ce) {
		status = httpStatus(ce.Code())
	}
	h.fail(w, r, s, status, code, msg)
}

// apiCode is the stable code and message of an API error.
func apiCode(err error) (string, string) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return "internal", err.Error()
	}
	code := ce.Code().String()
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if info, ok := v.(interface{ GetReason() string }); ok && info.GetReason() != "" {
				code = info.GetReason()
			}
		}
	}
	return code, ce.Message()
}

func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeOutOfRange:
		return http.StatusBadRequest
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeAlreadyExists, connect.CodeAborted:
		return http.StatusConflict
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// signedIn runs next for a request with a valid session (and, for a
// POST, the session's CSRF token); otherwise it sends to the sign-in page.
func (h *Handler) signedIn(next func(http.ResponseWriter, *http.Request, *session, *apiclient.Client)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var s *session
		if c, err := r.Cookie(cookieName(r.TLS != nil)); err == nil {
			s, err = h.open(c.Value, h.opts.Now())
			if err != nil {
				h.clearCookie(w, r)
			}
		}
		if s == nil {
			if r.Method != http.MethodGet {
				h.fail(w, r, nil, http.StatusUnauthorized, "auth.missing", "sign in first")
				return
			}
			h.loginPage(w, r) // at the page's own address; signing in leads to the overview
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseMultipartForm(maxForm); err != nil && !errors.Is(err, http.ErrNotMultipart) {
				h.fail(w, r, s, http.StatusBadRequest, "request.invalid", "unreadable form: "+err.Error())
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(h.csrf(s))) != 1 {
				h.fail(w, r, s, http.StatusForbidden, "csrf.token", "the form's CSRF token is missing or not this session's")
				return
			}
		}
		next(w, r, s, h.client(s.Token))
	}
}

// client is the API as the holder of token, in process.
func (h *Handler) client(token string) *apiclient.Client {
	return apiclient.New(&http.Client{Transport: apiclient.InProcess{Handler: h.opts.API}}, "http://console.local", token)
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(r.TLS != nil), Value: value, Path: "/", Expires: expires,
		MaxAge: int(expires.Sub(h.opts.Now()).Seconds()), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(r.TLS != nil), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "login", &page{Title: "Sign in", Data: h.opts.OAuth != nil})
}

// login starts a session from an API token, or from OAuth client
// credentials exchanged at the token endpoint.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, nil, http.StatusBadRequest, "request.invalid", "unreadable form")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if id := r.PostFormValue("client_id"); token == "" && id != "" && h.opts.OAuth != nil {
		var err error
		if token, err = h.oauthToken(r.Context(), id, r.PostFormValue("client_secret")); err != nil {
			h.render(w, http.StatusUnauthorized, "login", &page{Title: "Sign in", Data: true, Error: &failure{"auth.invalid", err.Error()}})
			return
		}
	}
	c, err := h.opts.Verify(token)
	if err != nil {
		h.opts.Log.Info("console: sign-in refused", "err", err)
		h.render(w, http.StatusUnauthorized, "login", &page{Title: "Sign in", Data: h.opts.OAuth != nil, Error: &failure{"auth.invalid", "the token does not verify, has expired or was revoked"}})
		return
	}
	now := h.opts.Now()
	exp := now.Add(MaxSession)
	if c.ExpiresAt != nil && c.ExpiresAt.Time.Before(exp) {
		exp = c.ExpiresAt.Time
	}
	id := make([]byte, 16)
	rand.Read(id)
	s := &session{ID: base64.RawURLEncoding.EncodeToString(id), Token: token, Subject: c.Subject, Tenant: c.Tenant, Role: c.Role, Expires: exp}
	v, err := h.seal(s)
	if err != nil {
		h.fail(w, r, nil, http.StatusInternalServerError, "internal", "cannot seal the session")
		return
	}
	h.setCookie(w, r, v, exp)
	h.opts.Log.Info("console: signed in", "subject", c.Subject, "tenant", c.Tenant, "role", c.Role)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session, _ *apiclient.Client) {
	h.clearCookie(w, r)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// pemOf decodes the first PEM certificate of s.
func pemOf(s string) *x509.Certificate {
	certs, err := datadir.ParseCertificates([]byte(s))
	if err != nil {
		return nil
	}
	return certs[0]
}

func date(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02")
}

func days(t time.Time) int { return int(time.Until(t).Hours() / 24) }

// bar is the share (0 to 100) of [from, to] that has passed, for a
// validity bar.
func bar(from, to time.Time) int {
	total := to.Sub(from)
	if total <= 0 {
		return 100
	}
	return max(0, min(100, int(100*time.Since(from)/total)))
}
