package contract

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/pncpki/pncpki/internal/redistest"
)

// TestSharedAnswers: two replicas keep their answers in Redis; a retry
// that reaches the other replica gets the same answer and no second
// contract certificate.
func TestSharedAnswers(t *testing.T) {
	rdb := redistest.Client(t)
	var p [8]byte
	rand.Read(p[:])
	prefix := "pncpki-test:" + hex.EncodeToString(p[:]) + ":"
	defer func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	}()

	e := newInstallEnv(t)
	e.in.Shared = &RedisAnswers{Client: rdb, Prefix: prefix}
	other := &Installer{Pool: e.in.Pool, CPS: e.in.CPS, OEMRoots: e.in.OEMRoots, Shared: &RedisAnswers{Client: rdb, Prefix: prefix}}
	req, err := e.ev.InstallationRequest()
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.in.Handle(context.Background(), ActionInstall, req, 5600)
	if err != nil {
		t.Fatal(err)
	}
	before := countContracts(t, e.d)
	again, err := other.Handle(context.Background(), ActionInstall, req, 5600)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Repeated || !bytes.Equal(again.EXI, first.EXI) || again.Contract.Serial != first.Contract.Serial ||
		len(again.ContractChain) != len(first.ContractChain) || !again.CPSRoot.Equal(first.CPSRoot) {
		t.Errorf("the other replica answered anew: repeated %v, same EXI %v", again.Repeated, bytes.Equal(again.EXI, first.EXI))
	}
	if n := countContracts(t, e.d); n != before {
		t.Errorf("%d contract certificates after the retry, want %d", n, before)
	}
	if _, err := e.ev.ReadResponse(again.EXI, e.ev.ProvisioningKey); err != nil {
		t.Errorf("the kept answer: %v", err)
	}
	// A new request is answered anew.
	req2, _ := e.ev.InstallationRequest()
	if res, err := other.Handle(context.Background(), ActionInstall, req2, 5600); err != nil || res.Repeated {
		t.Errorf("a new request: repeated %v, %v", res != nil && res.Repeated, err)
	}
}
