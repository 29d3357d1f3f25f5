package contract

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pncpki/pncpki/internal/redistest"
	"github.com/pncpki/pncpki/testcerts"
)

// testPrefix is a key prefix of one test; its keys go when the test ends.
func testPrefix(t *testing.T, rdb *redis.Client) string {
	var p [8]byte
	rand.Read(p[:])
	prefix := "pncpki-test:" + hex.EncodeToString(p[:]) + ":"
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	return prefix
}

// TestSharedAnswers: two replicas keep their answers in Redis; a retry
// that reaches the other replica gets the same answer and no second
// contract certificate.
func TestSharedAnswers(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := testPrefix(t, rdb)

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

// TestSharedSessions20: an ISO 15118-20 vehicle's requests of one V2G
// session reach two replicas in turn, which share the session (and the
// answers) in Redis: each request gets the next contract, a retry that
// reaches the other replica gets the same answer, and the session ends
// with none left.
func TestSharedSessions20(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := testPrefix(t, rdb)
	ctx := context.Background()
	for _, v := range variants20 {
		t.Run(v.name, func(t *testing.T) {
			e := newInstall20Env(t, v.ed)
			shared := func(in *Installer) *Installer {
				in.Shared = &RedisAnswers{Client: rdb, Prefix: prefix + "answers:"}
				in.Sessions = &RedisSessions{Client: rdb, Prefix: prefix + "sessions:"}
				return in
			}
			replicas := []*Installer{shared(e.in), shared(&Installer{Pool: e.in.Pool, CPS: e.in.CPS, CPS20: e.in.CPS20, OEMRoots: e.in.OEMRoots})}
			e.ev.SessionID = make([]byte, 8)
			rand.Read(e.ev.SessionID)
			var got []string
			for i := range 3 {
				req, _ := e.ev.InstallationRequest()
				res, err := replicas[i%2].Handle20(ctx, req, LimitOCPP21, Options20{})
				if err != nil {
					t.Fatalf("request %d at replica %d: %v", i+1, i%2, err)
				}
				inst, err := e.ev.ReadResponse20(res.EXI, testcerts.PCID)
				if err != nil || inst.Remaining != 2-i {
					t.Fatalf("request %d: %+v %v", i+1, inst, err)
				}
				got = append(got, inst.EMAID)
				if i == 0 {
					again, err := replicas[1].Handle20(ctx, req, LimitOCPP21, Options20{})
					if err != nil || !again.Repeated || !bytes.Equal(again.EXI, res.EXI) || again.Remaining != res.Remaining {
						t.Fatalf("a retry at the other replica: %v", err)
					}
				}
			}
			if !slices.Equal(got, e.emaids) {
				t.Errorf("contracts %v, want %v", got, e.emaids)
			}
			req, _ := e.ev.InstallationRequest()
			var ie *InstallError
			if _, err := replicas[1].Handle20(ctx, req, LimitOCPP21, Options20{}); !errors.As(err, &ie) || ie.Reason != ReasonNoContract {
				t.Errorf("a fourth request: %v", err)
			}
		})
	}
}
