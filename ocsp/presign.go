package ocsp

import (
	"context"
	"crypto"
	"math/big"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/internal/periodic"
	"github.com/pncpki/pncpki/store"
)

// Run keeps responses and CRLs fresh and applies revocations announced
// through Redis, until ctx ends: every PreSignInterval it walks the live
// certificates of every CA, signs the responses that are missing or due
// (at most PreSignRate a second, so a large refresh is spread out), and
// regenerates CRLs that changed or are older than ca.CRLRefresh.
func (r *Responder) Run(ctx context.Context) {
	if r.redis != nil {
		go r.subscribe(ctx)
	}
	go r.followRevocations(ctx)
	if r.opts.PreSignInterval < 0 {
		<-ctx.Done()
		return
	}
	for {
		if _, err := r.PreSign(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("OCSP pre-signing", "err", err)
		}
		r.refreshCRLs(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.opts.PreSignInterval):
		}
	}
}

// followRevocations applies the store's revocation feed every
// RevocationPoll: the way revocations reach this responder when Redis is
// not configured or down, and a backstop when it is.
func (r *Responder) followRevocations(ctx context.Context) {
	periodic.Every(ctx, r.opts.RevocationPoll, func() {
		if err := r.ApplyRevocations(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("reading the revocation feed", "err", err)
		}
	})
}

// ApplyRevocations drops cached answers for every revocation recorded in
// the store since the last call, and refreshes the CRLs of their issuers.
func (r *Responder) ApplyRevocations(ctx context.Context) error {
	r.feedMu.Lock()
	defer r.feedMu.Unlock()
	issuers := map[string]bool{}
	for {
		feed, err := r.opts.Store.Revocations(ctx, r.feedCursor, store.MaxPage)
		if err != nil {
			return err
		}
		for _, rv := range feed {
			r.Invalidate(rv.Issuer, rv.Serial)
			issuers[rv.Issuer] = true
			r.feedCursor = rv.Seq
		}
		if len(feed) < store.MaxPage {
			break
		}
	}
	for name := range issuers {
		if _, err := r.opts.CA.CurrentCRL(ctx, name); err != nil {
			r.log.Error("CRL after revocation", "ca", name, "err", err)
		}
	}
	return nil
}

func (r *Responder) refreshCRLs(ctx context.Context) {
	for _, a := range r.opts.CA.Authorities() {
		_, err := r.opts.CA.CurrentCRL(ctx, a.Name)
		switch {
		case err == nil || ctx.Err() != nil:
		case ca.CodeOf(err) == ca.CodeCAOffline:
			r.warnHourly("offline-crl/"+a.Name, "CRL of an offline CA not served", "ca", a.Name, "err", err)
		default:
			r.log.Error("CRL refresh", "ca", a.Name, "err", err)
		}
	}
}

// PreSign makes one pass over every live certificate and signs the
// responses (for PreSignHashes) that are missing or due for refresh: into
// Redis when configured (so the process stays small and every replica
// shares them), else into the in-process cache as far as it holds. It
// returns how many it signed.
func (r *Responder) PreSign(ctx context.Context) (int, error) {
	r.mu.RLock()
	issuers := make([]*issuer, 0, len(r.byName))
	for _, is := range r.byName {
		issuers = append(issuers, is)
	}
	r.mu.RUnlock()
	interval := max(time.Second/time.Duration(r.opts.PreSignRate), 10*time.Microsecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	signed := 0
	for _, is := range issuers {
		for after := ""; ; {
			gen := r.cache.generation()
			page, err := r.opts.Store.Live(ctx, is.name, r.opts.Now(), after, 500)
			if err != nil {
				return signed, err
			}
			redo := false
			for _, d := range r.due(ctx, is, page) {
				select {
				case <-ctx.Done():
					return signed, ctx.Err()
				case <-tick.C:
				}
				e, err := r.sign(is, d.hash, d.serial, d.status, nil, r.opts.Now())
				if err != nil {
					return signed, err
				}
				if r.redis != nil {
					r.toRedis(ctx, is, d.hash, d.serial, e)
				} else if !r.cache.putIf(newCacheKey(is, d.hash, d.serial), e, gen) {
					// A revocation arrived since the page was read.
					redo = true
					break
				}
				signed++
			}
			if redo {
				continue
			}
			if len(page) < 500 {
				break
			}
			after = page[len(page)-1].Serial
		}
	}
	return signed, nil
}

type dueResponse struct {
	hash   crypto.Hash
	serial *big.Int
	status certStatus
}

// due lists the responses of a page that are missing or due for refresh,
// or whose status changed.
func (r *Responder) due(ctx context.Context, is *issuer, page []store.CertStatus) []dueResponse {
	now := r.opts.Now()
	var out []dueResponse
	var cands []dueResponse
	for _, c := range page {
		serial, ok := new(big.Int).SetString(c.Serial, 16)
		if !ok {
			continue
		}
		st := certStatus{status: Good, profile: c.Profile}
		if !c.RevokedAt.IsZero() {
			st = certStatus{status: Revoked, revokedAt: c.RevokedAt, reason: c.Reason, profile: c.Profile}
		}
		for _, h := range r.opts.PreSignHashes {
			cands = append(cands, dueResponse{hash: h, serial: serial, status: st})
		}
	}
	fresh := func(e *entry, st certStatus) bool {
		return e != nil && now.Before(r.refreshAt(e)) && st.same(e)
	}
	if r.redis == nil || !r.redisUsable() {
		for _, d := range cands {
			if !fresh(r.cache.get(newCacheKey(is, d.hash, d.serial)), d.status) {
				out = append(out, d)
			}
		}
		return out
	}
	cmds := make([]*redis.StringCmd, len(cands))
	marks := make([]*redis.IntCmd, len(cands))
	_, err := r.redis.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range cands {
			cmds[i] = p.Get(ctx, respKey(r.redis.prefix, is.name, d.hash, d.serial))
			if d.status.status == Good {
				marks[i] = p.Exists(ctx, revokedKey(r.redis.prefix, is.name, d.serial))
			}
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		r.redisDown(err)
		return nil
	}
	for i, d := range cands {
		if marks[i] != nil && marks[i].Val() > 0 {
			continue // revoked since the page was read: the request path signs it
		}
		var e *entry
		if b, err := cmds[i].Bytes(); err == nil {
			e, _ = r.decodeEntry(b)
		}
		if !fresh(e, d.status) {
			out = append(out, d)
		}
	}
	return out
}
