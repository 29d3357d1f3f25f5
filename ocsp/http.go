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
	"sync"
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
				r.metrics.malformed.Inc()
				return
			}
		case http.MethodPost:
			if !isOCSPRequestType(req.Header.Get("Content-Type")) {
				httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/ocsp-request")
				return
			}
			buf := bodyPool.Get().(*[]byte)
			defer bodyPool.Put(buf)
			n, err := io.ReadFull(req.Body, (*buf)[:MaxRequestSize+1])
			switch {
			case n > MaxRequestSize:
				httpError(w, http.StatusRequestEntityTooLarge, "OCSP request larger than "+strconv.Itoa(MaxRequestSize)+" bytes")
				return
			case err != nil && err != io.ErrUnexpectedEOF && err != io.EOF:
				httpError(w, http.StatusBadRequest, "cannot read request body")
				return
			}
			der = (*buf)[:n]
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			httpError(w, http.StatusMethodNotAllowed, "use GET or POST")
			return
		}
		parsed, err := ParseRequest(der)
		if err != nil {
			r.metrics.malformed.Inc()
			r.writeOCSP(w, req, ErrorResponse(StatusMalformedRequest))
			return
		}
		e, err := r.respond(req.Context(), parsed)
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
		if !e.Cacheable {
			h["Cache-Control"] = noStore
			r.writeOCSP(w, req, e.DER)
			return
		}
		if left := time.Until(e.NextUpdate); left >= r.opts.MaxAge {
			h["Cache-Control"] = r.cacheControl
		} else {
			h["Cache-Control"] = []string{"max-age=" + strconv.Itoa(int(max(left, 0).Seconds())) + ", public, no-transform, must-revalidate"}
		}
		h["Last-Modified"], h["Expires"], h["Etag"] = e.hdrLastModified, e.hdrExpires, e.hdrETag
		if match := req.Header.Get("If-None-Match"); match != "" && match == e.ETag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h["Content-Type"], h["Content-Length"] = ocspResponseType, e.hdrLength
		if req.Method != http.MethodHead {
			w.Write(e.DER)
		}
	})
}

// Header values shared by every response; never modified.
var (
	ocspResponseType = []string{"application/ocsp-response"}
	noStore          = []string{"no-store"}
)

// bodyPool holds POST body buffers of MaxRequestSize+1 bytes.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, MaxRequestSize+1); return &b }}

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

func isOCSPRequestType(ct string) bool {
	if ct == "application/ocsp-request" {
		return true // the common case, without parsing
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/ocsp-request"
}
