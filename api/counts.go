package api

import (
	"context"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/store"
)

const (
	// countsTTL is how long a count by profile is answered as it is; an
	// older one is answered while a new one is made. A count reads every
	// certificate of its scope: about a second for a million on SQLite.
	countsTTL = time.Minute
	// countTimeout bounds one count.
	countTimeout = 2 * time.Minute
	// maxCountScopes bounds the scopes kept: administrators may name any
	// tenant.
	maxCountScopes = 1024
)

// profileCounts keeps the latest count by profile of each scope (tenant;
// "": all), so that the console's overview never waits for a full read of
// the certificates once a scope has been counted.
type profileCounts struct {
	mu     sync.Mutex
	scopes map[string]*countEntry
}

type countEntry struct {
	ready      chan struct{} // closed when the first count is done
	counts     []store.ProfileCount
	asOf       time.Time
	err        error // of the first count; the entry is then dropped
	refreshing bool
}

// get returns the count of tenant's certificates and when it was made:
// the first time after the count, later at once, starting a new count in
// the background when the kept one is older than countsTTL.
func (pc *profileCounts) get(ctx context.Context, st store.Store, tenant string, now func() time.Time) ([]store.ProfileCount, time.Time, error) {
	pc.mu.Lock()
	e := pc.scopes[tenant]
	if e == nil {
		if pc.scopes == nil || len(pc.scopes) >= maxCountScopes {
			pc.scopes = map[string]*countEntry{}
		}
		e = &countEntry{ready: make(chan struct{})}
		pc.scopes[tenant] = e
		go pc.count(ctx, st, tenant, now, e, true)
	}
	pc.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if e.err != nil {
		return nil, time.Time{}, e.err
	}
	if now().Sub(e.asOf) > countsTTL && !e.refreshing {
		e.refreshing = true
		go pc.count(ctx, st, tenant, now, e, false)
	}
	return e.counts, e.asOf, nil
}

// count counts into e, apart from the caller's cancellation: a count
// that a closed request started still serves the next one.
func (pc *profileCounts) count(ctx context.Context, st store.Store, tenant string, now func() time.Time, e *countEntry, first bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), countTimeout)
	defer cancel()
	at := now()
	counts, err := st.ProfileCounts(ctx, tenant, at)
	pc.mu.Lock()
	defer pc.mu.Unlock()
	e.refreshing = false
	switch {
	case err == nil:
		e.counts, e.asOf = counts, at
	case first:
		e.err = err
		if pc.scopes[tenant] == e {
			delete(pc.scopes, tenant) // the next request counts anew
		}
	}
	// A failed refresh keeps the older count; the next request after
	// countsTTL tries again.
	if first {
		close(e.ready)
	}
}

// WarmCounts starts counting every certificate by profile in the
// background, so that the first overview after start finds the count made.
// Call it after Handler.
func (s *Server) WarmCounts(ctx context.Context) {
	go s.counts.get(ctx, s.Store, "", s.Now)
}

func (h *certificates) CertificateCounts(ctx context.Context, req *connect.Request[pncpkiv1.CertificateCountsRequest]) (*connect.Response[pncpkiv1.CertificateCountsResponse], error) {
	tenant, err := scopeTenant(ctx, req.Msg.Tenant, "count")
	if err != nil {
		return nil, err
	}
	counts, asOf, err := h.s.counts.get(ctx, h.s.Store, tenant, h.s.Now)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.CertificateCountsResponse{AsOf: timestamppb.New(asOf)}
	for _, c := range counts {
		resp.Counts = append(resp.Counts, &pncpkiv1.ProfileCount{Profile: c.Profile, Valid: c.Valid, Expired: c.Expired, Revoked: c.Revoked})
	}
	return connect.NewResponse(resp), nil
}
