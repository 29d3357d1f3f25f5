package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pncpki/pncpki/store/postgres/pgtest"
)

// pgProxy forwards TCP connections to PostgreSQL until cut, when it
// closes its listener and every connection: the store's outage, without
// stopping the server other tests use.
type pgProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *pgProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestStoreOutage: while PostgreSQL cannot be reached, the API answers
// 503 store.unavailable with Retry-After, not 500.
func TestStoreOutage(t *testing.T) {
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPGProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	e := newEnv(t, u.String())
	if status, body := e.rest(t, "GET", "/v1/certificates", e.tokens["cpo1"], nil); status != 200 {
		t.Fatalf("before the outage: %d %v", status, body)
	}
	proxy.cut()
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/certificates"},
		{"GET", "/v1/stations"},
		{"POST", "/v1/certificates"},
	} {
		var body io.Reader
		if tc.method == "POST" {
			body = strings.NewReader(`{"profile":"iso15118-2/secc","csr":"` + strings.ReplaceAll(goCSR(t, "DE*ABC*E1"), "\n", `\n`) + `"}`)
		}
		req, _ := http.NewRequestWithContext(context.Background(), tc.method, e.srv.URL+tc.path, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.tokens["cpo1"])
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.Contains(string(b), "store.unavailable") || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s during the outage: %d %s (Retry-After %q)", tc.method, tc.path, resp.StatusCode, b, resp.Header.Get("Retry-After"))
		}
	}
}
