package contract

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sessions keeps, per vehicle and ISO 15118-20 V2G session, the EMAIDs of
// the contracts already handed out: the vehicle asks again while
// RemainingContractCertificateChains is above zero, and each answer
// carries the next contract. A session is kept for SessionTTL after its
// last contract.
type Sessions interface {
	// Delivered returns the EMAIDs the session got, in any order.
	Delivered(ctx context.Context, session string) ([]string, error)
	// Add records that the session got emaid.
	Add(ctx context.Context, session, emaid string) error
}

// SessionTTL bounds how long a V2G session's contracts are kept: a V2G
// session does not last an hour.
const SessionTTL = time.Hour

func (in *Installer) sessions20() Sessions {
	if in.Sessions != nil {
		return in.Sessions
	}
	return &in.sessions
}

// memorySessions keeps sessions in the process.
type memorySessions struct {
	mu    sync.Mutex
	given map[string]*given20
}

type given20 struct {
	emaids []string
	at     time.Time
}

// Delivered implements Sessions, dropping expired sessions.
func (s *memorySessions) Delivered(_ context.Context, session string) ([]string, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, g := range s.given {
		if now.Sub(g.at) > SessionTTL {
			delete(s.given, k)
		}
	}
	if g := s.given[session]; g != nil {
		return slices.Clone(g.emaids), nil
	}
	return nil, nil
}

// Add implements Sessions.
func (s *memorySessions) Add(_ context.Context, session, emaid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.given == nil {
		s.given = map[string]*given20{}
	}
	g := s.given[session]
	if g == nil {
		g = &given20{}
		s.given[session] = g
	}
	if !slices.Contains(g.emaids, emaid) {
		g.emaids = append(g.emaids, emaid)
	}
	g.at = time.Now()
	return nil
}

// reset forgets every session (benchmarks that reuse sessions).
func (s *memorySessions) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.given)
}

// RedisSessions keeps sessions in Redis (pncd's shared tier), one set per
// session, so that every replica continues a session where another left
// it.
type RedisSessions struct {
	Client redis.UniversalClient
	// Prefix starts the keys (default "pncpki:session20:").
	Prefix string
}

func (r *RedisSessions) key(session string) string {
	p := r.Prefix
	if p == "" {
		p = "pncpki:session20:"
	}
	return p + session
}

// Delivered implements Sessions.
func (r *RedisSessions) Delivered(ctx context.Context, session string) ([]string, error) {
	return r.Client.SMembers(ctx, r.key(session)).Result()
}

// Add implements Sessions: the EMAID and the session's expiry in one
// transaction.
func (r *RedisSessions) Add(ctx context.Context, session, emaid string) error {
	k := r.key(session)
	_, err := r.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, k, emaid)
		p.Expire(ctx, k, SessionTTL)
		return nil
	})
	return err
}
