package contract

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pncpki/pncpki/store"
)

// Answers keeps the answers of recent requests where every replica finds
// them: a station's retry that a load balancer sends to another replica
// gets the same answer, not a second contract certificate. Two replicas
// working on the same request at the same moment can still both answer.
type Answers interface {
	// Get returns the answer kept for key, nil when there is none.
	Get(ctx context.Context, key [32]byte) (*Response, error)
	Put(ctx context.Context, key [32]byte, res *Response, ttl time.Duration) error
}

// RedisAnswers keeps answers in Redis (pncd's shared tier) for their
// window.
type RedisAnswers struct {
	Client redis.UniversalClient
	// Prefix starts the keys (default "pncpki:install:").
	Prefix string
}

func (a *RedisAnswers) key(k [32]byte) string {
	p := a.Prefix
	if p == "" {
		p = "pncpki:install:"
	}
	return p + hex.EncodeToString(k[:])
}

// storedAnswer is a Response as kept outside the process.
type storedAnswer struct {
	EXI           []byte             `json:"exi"`
	EMAID         string             `json:"emaid"`
	PCID          string             `json:"pcid"`
	Contract      *store.Certificate `json:"contract,omitempty"`
	ContractChain [][]byte           `json:"contract_chain"`
	CPSChain      [][]byte           `json:"cps_chain"`
	CPSRoot       []byte             `json:"cps_root,omitempty"`
	ISO20         bool               `json:"iso20,omitempty"`
	Remaining     int                `json:"remaining,omitempty"`
}

// Get implements Answers.
func (a *RedisAnswers) Get(ctx context.Context, k [32]byte) (*Response, error) {
	data, err := a.Client.Get(ctx, a.key(k)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var s storedAnswer
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("kept answer: %w", err)
	}
	res := &Response{EXI: s.EXI, EMAID: s.EMAID, PCID: s.PCID, Contract: s.Contract, ContractChain: s.ContractChain, ISO20: s.ISO20, Remaining: s.Remaining}
	res.CPSChain, err = parseAll(s.CPSChain)
	if err == nil && len(s.CPSRoot) > 0 {
		res.CPSRoot, err = x509.ParseCertificate(s.CPSRoot)
	}
	if err != nil {
		return nil, fmt.Errorf("kept answer: %w", err)
	}
	return res, nil
}

// Put implements Answers.
func (a *RedisAnswers) Put(ctx context.Context, k [32]byte, res *Response, ttl time.Duration) error {
	s := storedAnswer{EXI: res.EXI, EMAID: res.EMAID, PCID: res.PCID, Contract: res.Contract,
		ContractChain: res.ContractChain, CPSChain: ChainDER(res.CPSChain), ISO20: res.ISO20, Remaining: res.Remaining}
	if res.CPSRoot != nil {
		s.CPSRoot = res.CPSRoot.Raw
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return a.Client.Set(ctx, a.key(k), data, ttl).Err()
}

// ChainDER is the DER of every certificate of a chain, in order.
func ChainDER(cs []*x509.Certificate) [][]byte {
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Raw
	}
	return out
}

func parseAll(ders [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, len(ders))
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}
