package ocsp

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Handler serves OCSP over HTTP (RFC 6960 appendix A, RFC 5019):
//
//	GET  {prefix}/{base64 DER request}   standard base64, percent-encoded; base64url accepted
//	POST {prefix}                        Content-Type application/ocsp-request
//
// prefix is the path the handler is mounted at, e.g. "/ocsp".
func (r *Responder) Handler(prefix string) http.Handler {
	prefix = strings.TrimSuffix(prefix, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var der []byte
		switch req.Method {
		case http.MethodGet, http.MethodHead:
			raw := strings.TrimPrefix(req.URL.EscapedPath(), prefix)
			raw = strings.TrimPrefix(raw, "/")
			if len(raw) > 4*MaxRequestSize {
				httpError(w, http.StatusRequestURITooLong, "request URI too long")
				return
			}
			var err error
			if der, err = decodeGET(raw); err != nil {
				r.writeOCSP(w, req, ErrorResponse(StatusMalformedRequest))
				r.metrics.responses.WithLabelValues("malformed").Inc()
				return
			}
		case http.MethodPost:
			if ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); ct != "application/ocsp-request" {
				httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/ocsp-request")
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxRequestSize))
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				httpError(w, http.StatusRequestEntityTooLarge, "OCSP request larger than "+strconv.Itoa(MaxRequestSize)+" bytes")
				return
			} else if err != nil {
				httpError(w, http.StatusBadRequest, "cannot read request body")
				return
			}
			der = body
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			httpError(w, http.StatusMethodNotAllowed, "use GET or POST")
			return
		}
		parsed, err := ParseRequest(der)
		if err != nil {
			r.metrics.responses.WithLabelValues("malformed").Inc()
			r.writeOCSP(w, req, ErrorResponse(StatusMalformedRequest))
			return
		}
		ans, err := r.Respond(req.Context(), parsed)
		switch {
		case errors.Is(err, ErrUnauthorized):
			r.writeOCSP(w, req, ErrorResponse(StatusUnauthorized))
			return
		case err != nil:
			r.log.Error("OCSP", "err", err)
			r.writeOCSP(w, req, ErrorResponse(StatusInternalError))
			return
		}
		h := w.Header()
		if ans.Cacheable {
			maxAge := min(r.opts.MaxAge, time.Until(ans.NextUpdate))
			h.Set("Cache-Control", "max-age="+strconv.Itoa(int(max(maxAge, 0).Seconds()))+", public, no-transform, must-revalidate")
			h.Set("Last-Modified", ans.ThisUpdate.UTC().Format(http.TimeFormat))
			h.Set("Expires", ans.NextUpdate.UTC().Format(http.TimeFormat))
			h.Set("ETag", ans.ETag)
			if match := req.Header.Get("If-None-Match"); match != "" && match == ans.ETag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		} else {
			h.Set("Cache-Control", "no-store")
		}
		r.writeOCSP(w, req, ans.DER)
	})
}

func (r *Responder) writeOCSP(w http.ResponseWriter, req *http.Request, der []byte) {
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Header().Set("Content-Length", strconv.Itoa(len(der)))
	if req.Method != http.MethodHead {
		w.Write(der)
	}
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, `{"code":"ocsp.`+strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))+`","message":`+strconv.Quote(msg)+"}\n")
}

// decodeGET undoes the URL and base64 encodings of a GET request path.
func decodeGET(raw string) ([]byte, error) {
	s, err := url.PathUnescape(raw)
	if err != nil {
		return nil, err
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if der, err := enc.DecodeString(s); err == nil {
			return der, nil
		}
	}
	return nil, errors.New("not base64")
}
