package egress

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCheck refuses every class of address a tenant's URL may not reach,
// IPv4 and IPv6, mapped and embedded forms included, and passes public
// ones and the networks the operator allows.
func TestCheck(t *testing.T) {
	p := &Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}
	for _, tc := range []struct {
		addr, kind string // kind "" passes
	}{
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.0.0.1", "private"},
		{"::ffff:10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"192.168.1.1", "private"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"ff05::2", "multicast"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "reserved"},
		{"100.64.0.1", "reserved"},
		{"198.18.0.1", "reserved"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "not unicast"},
		{"64:ff9b::a9fe:a9fe", "link-local (embedded 169.254.169.254)"},
		{"2002:7f00:1::1", "loopback (embedded 127.0.0.1)"},
		{"10.20.1.1", ""}, // allowed by the operator
		{"10.21.0.1", "private"},
		{"8.8.8.8", ""},
		{"2001:4860:4860::8888", ""},
		{"64:ff9b::808:808", ""},
	} {
		err := p.Check(netip.MustParseAddr(tc.addr))
		var re *RefusedError
		switch {
		case tc.kind == "" && err != nil:
			t.Errorf("%s refused: %v", tc.addr, err)
		case tc.kind != "" && (!errors.As(err, &re) || re.Kind != tc.kind):
			t.Errorf("%s: %v, want refused as %s", tc.addr, err, tc.kind)
		}
	}
}

// TestCheckURL: what a tenant may register.
func TestCheckURL(t *testing.T) {
	p := &Policy{}
	for _, tc := range []struct {
		url, want string // want "" passes, else a part of the refusal
	}{
		{"https://169.254.169.254/latest/meta-data/", "link-local"},
		{"https://10.0.0.1:8443/", "private"},
		{"https://localhost:6379/", "loopback"},
		{"https://LOCALHOST./x", "loopback"},
		{"https://api.localhost/x", "loopback"},
		{"https://[::ffff:127.0.0.1]/x", "loopback"},
		{"https://[fe80::1]/x", "link-local"},
		{"https://user:pass@hooks.example.com/x", "credentials"},
		{"https://hooks.example.com/x", ""},
		{"https://198.18.0.5/x", "reserved"},
		{"http://hooks.example.com/x", "want https"},
		{"http://127.0.0.1:9/x", "loopback"},
		{"/relative", "absolute"},
		{"mailto:a@b.c", "absolute"},
	} {
		err := p.CheckURL(tc.url)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
	}
	allowed := &Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if err := allowed.CheckURL("http://127.0.0.1:9/x"); err != nil {
		t.Errorf("http to an allowed network: %v", err)
	}
}

// TestClient: a name that resolves to loopback is refused when the
// connection is made; with loopback allowed it is reached; a redirect is
// not followed, and its target never sees a request.
func TestClient(t *testing.T) {
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/metadata", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	byName := strings.Replace(redirect.URL, "127.0.0.1", "localhost", 1)

	_, err := (&Policy{}).Client(5*time.Second).Post(byName, "application/json", strings.NewReader("{}"))
	var re *RefusedError
	if !errors.As(err, &re) || re.Kind != "loopback" {
		t.Fatalf("localhost without an allowed network: %v", err)
	}
	loopback := &Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	resp, err := loopback.Client(5*time.Second).Post(byName, "application/json", strings.NewReader("{}"))
	if !errors.Is(err, ErrRedirect) {
		t.Fatalf("redirect: %v %v", resp, err)
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the redirect's target got %d requests", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.Replace(target.URL, "127.0.0.1", "localhost", 1), nil)
	if resp, err := loopback.Client(5 * time.Second).Do(req); err != nil || resp.StatusCode != 200 || reached.Load() != 1 {
		t.Fatalf("an allowed endpoint: %v %v", resp, err)
	}
}

func TestParseNetworks(t *testing.T) {
	got, err := ParseNetworks(" 10.20.0.0/16, 192.0.2.7 ,::1, ")
	if err != nil || len(got) != 3 || got[1] != netip.MustParsePrefix("192.0.2.7/32") || got[2] != netip.MustParsePrefix("::1/128") {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := ParseNetworks("10.0.0.0/33"); err == nil {
		t.Error("a bad network parsed")
	}
}

// FuzzCheckURL: a URL a tenant sends never panics the check, and one that
// passes with a literal address names an address Check passes.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/x", "https://[::ffff:169.254.169.254]/", "http://u:p@10.0.0.1:80/", "https://%31%32%37.0.0.1/"} {
		f.Add(s)
	}
	p := &Policy{}
	f.Fuzz(func(t *testing.T, s string) {
		if p.CheckURL(s) != nil {
			return
		}
		u, _ := url.Parse(s)
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && p.Check(a) != nil {
			t.Fatalf("%q passed with address %s", s, a)
		}
	})
}
