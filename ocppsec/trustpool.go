package ocppsec

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/store"
)

// The trust anchors change while pncd runs: an administrator adds or
// removes roots of the root certificate pool, and the root sync with an
// upstream ecosystem follows its pool. Such anchors live in the store; the
// bridge publishes the configured anchors (Bridge.Anchors) plus the stored
// ones as one immutable snapshot, so that readers never lock.

// Clone returns a copy that can be changed without touching a.
func (a Anchors) Clone() Anchors {
	out := make(Anchors, len(a))
	for u, cs := range a {
		out[u] = slices.Clone(cs)
	}
	return out
}

// anchorSnapshot is the trust anchors in force: the configured ones plus
// the stored ones, and their MO and V2G roots as a pool for Authorize,
// built once per change rather than per call.
type anchorSnapshot struct {
	anchors       Anchors
	contractRoots *x509.CertPool
}

// TrustAnchors returns the trust anchors in force. The value is shared:
// read it, never change it.
func (b *Bridge) TrustAnchors() Anchors {
	if p := b.live.Load(); p != nil {
		return p.anchors
	}
	return b.Anchors
}

// contractRootPool returns the MO and V2G trust anchors in force as a
// pool.
func (b *Bridge) contractRootPool() *x509.CertPool {
	if p := b.live.Load(); p != nil {
		return p.contractRoots
	}
	return b.Anchors.Pool(UseMO, UseV2G)
}

// RefreshAnchors publishes the configured anchors plus those in the store;
// pncd calls it at start and periodically, so that every replica follows
// the changes another one made. A stored anchor that no longer parses is
// logged and left out.
func (b *Bridge) RefreshAnchors(ctx context.Context) error {
	b.anchorsMu.Lock()
	defer b.anchorsMu.Unlock()
	return b.refreshAnchors(ctx)
}

func (b *Bridge) refreshAnchors(ctx context.Context) error {
	a := b.Anchors.Clone()
	stored, err := b.Store.ListTrustAnchors(ctx)
	if err != nil {
		return fmt.Errorf("read trust anchors: %w", err)
	}
	for _, s := range stored {
		c, err := x509.ParseCertificate(s.DER)
		if err == nil {
			err = a.Add(Use(s.Use), c)
		}
		if err != nil {
			b.log().Warn("stored trust anchor left out", "use", s.Use, "sha256", s.SHA256, "err", err)
		}
	}
	b.live.Store(&anchorSnapshot{anchors: a, contractRoots: a.Pool(UseMO, UseV2G)})
	return nil
}

// Errors of trust anchor changes.
var (
	ErrAnchorExists     = errors.New("already a trust anchor")
	ErrAnchorNotFound   = errors.New("no such trust anchor")
	ErrAnchorConfigured = errors.New("the trust anchor is configured (pncpki's own root or a --trust-anchors file); it cannot be removed at run time")
)

// RootUses are the uses of the root certificate pool that can change at
// run time; CSMS and manufacturer roots change with the configuration only.
var RootUses = []Use{UseV2G, UseMO, UseOEM}

// AddTrustAnchor stores c as a trust anchor for u and publishes it.
// source says who added it ("admin", or an upstream's URL).
func (b *Bridge) AddTrustAnchor(ctx context.Context, u Use, c *x509.Certificate, source string) error {
	if !slices.Contains(RootUses, u) {
		return fmt.Errorf("use %s cannot change at run time", u)
	}
	if err := IsRoot(c); err != nil {
		return err
	}
	return b.changeAnchors(ctx, func(note func(Use, *x509.Certificate, bool)) error {
		if slices.ContainsFunc(b.TrustAnchors()[u], c.Equal) {
			return fmt.Errorf("%s: %w", c.Subject, ErrAnchorExists)
		}
		err := b.storeAnchor(ctx, u, c, source)
		if errors.Is(err, store.ErrExists) {
			err = fmt.Errorf("%s: %w", c.Subject, ErrAnchorExists)
		}
		if err == nil {
			note(u, c, true)
		}
		return err
	})
}

// RemoveTrustAnchor removes a stored anchor of use u by fingerprint.
func (b *Bridge) RemoveTrustAnchor(ctx context.Context, u Use, fingerprint string) error {
	return b.changeAnchors(ctx, func(note func(Use, *x509.Certificate, bool)) error {
		named := func(c *x509.Certificate) bool { return ca.Fingerprint(c) == fingerprint }
		if slices.ContainsFunc(b.Anchors[u], named) {
			return ErrAnchorConfigured
		}
		i := slices.IndexFunc(b.TrustAnchors()[u], named)
		err := b.Store.RemoveTrustAnchor(ctx, string(u), fingerprint)
		if errors.Is(err, store.ErrNotFound) {
			return ErrAnchorNotFound
		} else if err != nil {
			return err
		}
		if i >= 0 { // else stored but unparseable: nothing was in force
			note(u, b.TrustAnchors()[u][i], false)
		}
		return nil
	})
}

// SyncAnchors makes the stored anchors from source equal to roots (of the
// RootUses): new ones are added, ones the source no longer lists removed.
// Anchors from other sources, and configured ones, stay. It returns how
// many were added and removed.
func (b *Bridge) SyncAnchors(ctx context.Context, source string, roots Anchors) (added, removed int, err error) {
	err = b.changeAnchors(ctx, func(note func(Use, *x509.Certificate, bool)) error {
		stored, err := b.Store.ListTrustAnchors(ctx)
		if err != nil {
			return err
		}
		for _, s := range stored {
			if s.Source != source {
				continue
			}
			if !slices.ContainsFunc(roots[Use(s.Use)], func(c *x509.Certificate) bool { return ca.Fingerprint(c) == s.SHA256 }) {
				if err := b.Store.RemoveTrustAnchor(ctx, s.Use, s.SHA256); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				removed++
				if c, err := x509.ParseCertificate(s.DER); err == nil {
					note(Use(s.Use), c, false)
				}
			}
		}
		current := b.TrustAnchors() // holds this source's stored anchors too
		for _, u := range RootUses {
			for _, c := range roots[u] {
				if slices.ContainsFunc(current[u], c.Equal) {
					continue
				}
				if err := IsRoot(c); err != nil {
					b.log().Warn("upstream root refused", "source", source, "subject", c.Subject.String(), "err", err)
					continue
				}
				err := b.storeAnchor(ctx, u, c, source)
				if err != nil && !errors.Is(err, store.ErrExists) {
					return err
				}
				added++
				note(u, c, true)
			}
		}
		return nil
	})
	return added, removed, err
}

// changeAnchors runs change under the anchors' lock, publishes the new
// snapshot when change succeeded, and then, unlocked, tells AnchorChanged
// of what change noted.
func (b *Bridge) changeAnchors(ctx context.Context, change func(note func(Use, *x509.Certificate, bool)) error) error {
	type event struct {
		u     Use
		c     *x509.Certificate
		added bool
	}
	var events []event
	err := func() error {
		b.anchorsMu.Lock()
		defer b.anchorsMu.Unlock()
		err := change(func(u Use, c *x509.Certificate, added bool) { events = append(events, event{u, c, added}) })
		if len(events) > 0 || err == nil {
			// What was stored before a failure is in force too.
			if rerr := b.refreshAnchors(ctx); err == nil {
				err = rerr
			}
		}
		return err
	}()
	if b.AnchorChanged != nil {
		for _, e := range events {
			b.AnchorChanged(ctx, e.u, e.c, e.added)
		}
	}
	return err
}

// storeAnchor records c as a stored anchor of use u from source.
func (b *Bridge) storeAnchor(ctx context.Context, u Use, c *x509.Certificate, source string) error {
	return b.Store.AddTrustAnchor(ctx, &store.TrustAnchor{Use: string(u), SHA256: ca.Fingerprint(c), DER: c.Raw, Source: source,
		AddedAt: b.now().UTC().Truncate(time.Millisecond)})
}
