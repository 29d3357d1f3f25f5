package webhook

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pncpki/pncpki/internal/egress"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/sqlite"
)

func TestWants(t *testing.T) {
	oem := &store.EventEndpoint{Tenant: "oem1", Enabled: true, Events: []string{ContractCreated, RootAdded}, WMIs: []string{"WMI"}}
	admin := &store.EventEndpoint{Enabled: true, Events: []string{ContractCreated}}
	disabled := &store.EventEndpoint{Tenant: "oem1", Events: []string{ContractCreated}}
	contract := Event{Type: ContractCreated, PCID: "WMIPNCTEST0000001", Tenant: "emsp1", OEM: "oem1"}
	tests := []struct {
		name string
		e    *store.EventEndpoint
		ev   Event
		want bool
	}{
		{"the vehicle's OEM", oem, contract, true},
		{"administrator", admin, contract, true},
		{"disabled", disabled, contract, false},
		{"not enabled type", oem, Event{Type: ContractDeleted, PCID: contract.PCID, Tenant: "emsp1", OEM: "oem1"}, false},
		{"another WMI", oem, Event{Type: ContractCreated, PCID: "ABCPNCTEST0000001", Tenant: "emsp1", OEM: "oem1"}, false},
		{"another OEM's vehicle", oem, Event{Type: ContractCreated, PCID: contract.PCID, Tenant: "emsp1", OEM: "oem2"}, false},
		{"unregistered vehicle", oem, Event{Type: ContractCreated, PCID: contract.PCID, Tenant: "emsp1"}, false},
		{"the contract's eMSP", &store.EventEndpoint{Tenant: "emsp1", Enabled: true, Events: []string{ContractCreated}}, contract, true},
		{"root event to a tenant", oem, Event{Type: RootAdded}, true},
	}
	for _, tt := range tests {
		if got := Wants(tt.e, tt.ev); got != tt.want {
			t.Errorf("%s: Wants = %v", tt.name, got)
		}
	}
}

// TestDeliveryGivesUp: an endpoint that keeps failing gets every attempt,
// then the delivery counts as failed; meanwhile it holds up no other
// endpoint's delivery, even with a single worker.
func TestDeliveryGivesUp(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "pncpki.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var calls atomic.Int32
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer dead.Close()
	alive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer alive.Close()
	ctx := store.WithActor(context.Background(), "test")
	for id, u := range map[string]string{"a-dead": dead.URL, "b-alive": alive.URL} {
		if err := st.PutEventEndpoint(ctx, &store.EventEndpoint{ID: id, URL: u, Events: []string{RootAdded}, Secret: "s", Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDispatcher(st, nil, nil, &egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	d.Attempts, d.Backoff = 3, 200*time.Millisecond
	run, stop := context.WithCancel(ctx)
	defer stop()
	go d.Run(run, 1)
	d.Publish(ctx, Event{Type: RootAdded, Payload: map[string]any{"commonName": "x"}})
	d.Publish(ctx, Event{Type: RootRevoked}) // nobody subscribed
	wait := func(result string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(d.deliveries.WithLabelValues(RootAdded, result)) < 1; {
			if time.Now().After(deadline) {
				t.Fatalf("no %s delivery after %d calls to the dead endpoint", result, calls.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait("delivered")
	if n := calls.Load(); n >= 3 {
		t.Errorf("the live endpoint waited for all %d attempts at the dead one", n)
	}
	wait("failed")
	if n := calls.Load(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestSignature(t *testing.T) {
	// RFC 4231 test case 2.
	if got := Signature("Jefe", []byte("what do ya want for nothing?")); got != "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Errorf("Signature = %s", got)
	}
}

// TestDeliveryGuards: an endpoint that redirects (307 would repeat the
// signed POST, 302 turn it into a GET) is not followed: the target, which
// was never checked, gets nothing, and the delivery fails. That a name is
// checked with the addresses it resolves to is internal/egress's test.
func TestDeliveryGuards(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "pncpki.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer target.Close()
	ctx := store.WithActor(context.Background(), "test")
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusFound} {
		redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/latest/meta-data/", code)
		}))
		defer redirect.Close()
		if err := st.PutEventEndpoint(ctx, &store.EventEndpoint{ID: fmt.Sprint("r", code), URL: redirect.URL, Events: []string{RootAdded}, Secret: "s", Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDispatcher(st, nil, nil, &egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	d.Attempts, d.Backoff = 1, time.Millisecond
	run, stop := context.WithCancel(ctx)
	defer stop()
	go d.Run(run, 2)
	d.Publish(ctx, Event{Type: RootAdded, Payload: map[string]any{"commonName": "x"}})
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(d.deliveries.WithLabelValues(RootAdded, "failed")) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%v deliveries failed, want 2", testutil.ToFloat64(d.deliveries.WithLabelValues(RootAdded, "failed")))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the redirects' target got %d requests", n)
	}
}
