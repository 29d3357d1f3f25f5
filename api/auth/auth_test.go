package auth

import (
	"strings"
	"testing"
	"time"
)

func TestMintVerify(t *testing.T) {
	k, err := LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := k.Mint("alice", "cpo1", RoleOperator, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := k.Verify(tok, now.Add(time.Minute))
	if err != nil || c.Tenant != "cpo1" || c.Role != RoleOperator || c.Subject != "alice" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	for name, at := range map[string]time.Time{"expired": now.Add(2 * time.Hour), "before issue": now.Add(-time.Hour)} {
		if _, err := k.Verify(tok, at); err == nil {
			t.Errorf("%s token accepted", name)
		}
	}
	// Within the leeway is fine.
	if _, err := k.Verify(tok, now.Add(-Leeway/2)); err != nil {
		t.Errorf("skew within leeway refused: %v", err)
	}
	other, _ := LoadOrCreateKey(t.TempDir())
	if _, err := other.Verify(tok, now); err == nil {
		t.Error("token of another key accepted")
	}
	if _, err := k.Verify(strings.Repeat("a", 9<<10), now); err == nil {
		t.Error("oversized token accepted")
	}
	for _, bad := range []struct {
		tenant, role string
		ttl          time.Duration
	}{{"cpo1", "root", time.Hour}, {"", RoleOperator, time.Hour}, {"cpo1", RoleOperator, 2 * MaxTTL}, {"cpo1", RoleOperator, 0}} {
		if _, err := k.Mint("x", bad.tenant, bad.role, bad.ttl, now); err == nil {
			t.Errorf("Mint(%v) accepted", bad)
		}
	}
}

func FuzzVerify(f *testing.F) {
	k, err := LoadOrCreateKey(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	tok, _ := k.Mint("a", "t", RoleOperator, time.Hour, time.Now())
	f.Add(tok)
	f.Add("eyJhbGciOiJub25lIn0.eyJ0ZW5hbnQiOiJ0In0.")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := k.Verify(s, time.Now())
		if err == nil && s != tok && c.Subject != "a" {
			t.Fatalf("accepted a token this key did not mint: %q", s)
		}
	})
}
