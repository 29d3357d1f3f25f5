package console

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func testHandler(t testing.TB, key byte) *Handler {
	t.Helper()
	k := make([]byte, 32)
	for i := range k {
		k[i] = key
	}
	h, err := New(Options{SessionKey: k})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSessionCookie(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	h := testHandler(t, 1)
	s := &session{ID: "abc", Token: "eyJ.x.y", Subject: "cpo1", Tenant: "cpo1", Role: "operator", Expires: now.Add(time.Hour)}
	v, err := h.seal(s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "eyJ") {
		t.Error("the cookie shows the token")
	}
	tampered := []byte(v)
	tampered[len(tampered)/2] ^= 1
	for _, tc := range []struct {
		name  string
		h     *Handler
		value string
		at    time.Time
		ok    bool
	}{
		{"sealed here, in time", h, v, now, true},
		{"expired", h, v, now.Add(time.Hour), false},
		{"another console's key", testHandler(t, 2), v, now, false},
		{"tampered", h, string(tampered), now, false},
		{"not base64", h, "%%%", now, false},
		{"too long", h, strings.Repeat("A", maxCookie+1), now, false},
	} {
		got, err := tc.h.open(tc.value, tc.at)
		if (err == nil) != tc.ok || tc.ok && (got.Token != s.Token || got.Tenant != "cpo1") {
			t.Errorf("%s: %+v %v", tc.name, got, err)
		}
	}
	if h.csrf(s) == h.csrf(&session{ID: "abd"}) || h.csrf(s) == testHandler(t, 2).csrf(s) {
		t.Error("CSRF tokens are not bound to the session and the key")
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		want         bool
	}{
		{"http://pki.example:8080", "pki.example:8080", true},
		{"https://pki.example", "pki.example", true}, // TLS ended by a proxy
		{"https://evil.example", "pki.example", false},
		{"https://pki.example.evil.example", "pki.example", false},
		{"null", "pki.example", false},
		{"ftp://pki.example", "pki.example", false},
		{"", "pki.example", false},
	} {
		r := httptest.NewRequest("POST", "http://"+tc.host+"/console/login", nil)
		if got := sameOrigin(tc.origin, r); got != tc.want {
			t.Errorf("origin %q for host %s: %v", tc.origin, tc.host, got)
		}
	}
}

// FuzzOpen: a session cookie from outside never panics and never opens
// unless this key sealed it (the seeds are sealed with another one).
func FuzzOpen(f *testing.F) {
	h := testHandler(f, 1)
	v, _ := testHandler(f, 2).seal(&session{ID: "a", Token: "t", Expires: time.Now().Add(time.Hour)})
	f.Add(v)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		if got, err := h.open(s, time.Now()); err == nil {
			t.Errorf("opened a cookie this key did not seal: %+v", got)
		}
	})
}

func TestCNForms(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"DE*SWM", []string{"DE*SWM"}},
		{"DE*SWM*E000123", []string{"DE*SWM*E000123"}},
		{"deswme000123", []string{"deswme000123", "DE*SWM*E000123"}},
		{"DE-8AA-C12345678-D", []string{"DE-8AA-C12345678-D", "DE8AAC12345678D"}},
		{"DE8AAC12345678", []string{"DE8AAC12345678", "DE8AAC12345678D"}},
		{"", []string{""}},
	} {
		if got := cnForms(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("cnForms(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
