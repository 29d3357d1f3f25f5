// Package egress guards the connections pncd makes to URLs that tenants
// set (webhook endpoints): a URL may not reach pncd's own host, its
// network, or a cloud metadata service. Every address a host name resolves
// to is checked when the connection is made, and the connection goes to
// the address that was checked: a second DNS answer cannot slip another
// one in. Redirects are not followed, as their target was never checked.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Policy says which addresses outgoing connections may reach: public
// unicast addresses, and the networks an operator allows besides (an
// endpoint in its own network, loopback in a test).
type Policy struct {
	// Allow lists networks that are reachable although they are not
	// public (e.g. 10.20.0.0/16 for a receiver inside the operator's
	// network).
	Allow []netip.Prefix
	// Resolver looks names up (default net.DefaultResolver).
	Resolver *net.Resolver
}

// ParseNetworks reads a comma-separated list of CIDR networks (a bare
// address is a network of one), as pncd's --egress-allow takes them.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("network %q: want CIDR such as 10.0.0.0/8 or an address", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// special are the IPv4 networks that are neither private nor loopback in
// netip's terms but no public endpoint lives in: "this network", shared
// address space (carrier-grade NAT), IETF protocol assignments,
// benchmarking, and the reserved class E with broadcast.
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// Prefixes that carry an IPv4 address inside an IPv6 one: NAT64 (RFC
// 6052) and 6to4 (RFC 3056). The IPv4 address inside is checked as well.
var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// Check refuses an address outgoing connections may not reach, saying
// what kind of address it is.
func (p *Policy) Check(a netip.Addr) error {
	a = a.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	for _, n := range p.allow() {
		if n.Contains(a) {
			return nil
		}
	}
	if kind := kindOf(a); kind != "" {
		return &RefusedError{Addr: a, Kind: kind}
	}
	var inner netip.Addr
	switch {
	case nat64.Contains(a):
		b := a.As16()
		inner = netip.AddrFrom4([4]byte(b[12:16]))
	case sixTo4.Contains(a):
		b := a.As16()
		inner = netip.AddrFrom4([4]byte(b[2:6]))
	}
	if inner.IsValid() {
		if kind := kindOf(inner); kind != "" {
			return &RefusedError{Addr: a, Kind: kind + " (embedded " + inner.String() + ")"}
		}
	}
	return nil
}

func (p *Policy) allow() []netip.Prefix {
	if p == nil {
		return nil
	}
	return p.Allow
}

// kindOf names the kind of a non-public address, "" for a public one.
func kindOf(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local" // 169.254.169.254, the cloud metadata service, is one
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case !a.IsGlobalUnicast():
		return "not unicast"
	}
	for _, n := range special {
		if n.Contains(a) {
			return "reserved"
		}
	}
	return ""
}

// RefusedError is an address the policy does not let a connection reach.
type RefusedError struct {
	Addr netip.Addr
	Kind string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("address %s is %s: not reachable from pncd (the operator may allow its network)", e.Addr, e.Kind)
}

// ErrRedirect is what a request that was redirected ends in: redirects
// are not followed.
var ErrRedirect = errors.New("the endpoint answered with a redirect, which is not followed")

// CheckURL checks a URL a tenant sets before it is stored: https (plain
// http only to an address the operator allows), no credentials, and a
// literal address or "localhost" must pass Check. A host name is checked
// again, with every address it resolves to, at each connection.
func (p *Policy) CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("not an absolute URL")
	}
	if u.User != nil {
		return errors.New("credentials in a URL are not allowed")
	}
	host := u.Hostname()
	var addr netip.Addr
	switch a, err := netip.ParseAddr(host); {
	case err == nil:
		addr = a
	case strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") || strings.HasSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), ".localhost"):
		addr = netip.MustParseAddr("127.0.0.1") // RFC 6761: localhost names are loopback
	}
	if addr.IsValid() {
		if err := p.Check(addr); err != nil {
			return err
		}
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if addr.IsValid() && p.allowed(addr) {
			return nil
		}
	}
	return errors.New("want https (plain http only to an address in a network the operator allows)")
}

// allowed says whether a is in one of the networks the operator allows.
func (p *Policy) allowed(a netip.Addr) bool {
	for _, n := range p.allow() {
		if n.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// DialContext connects to address (host:port) through an address of host
// that Check passes; it is http.Transport's DialContext.
func (p *Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		r := net.DefaultResolver
		if p != nil && p.Resolver != nil {
			r = p.Resolver
		}
		if addrs, err = r.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
	}
	var refused error
	d := net.Dialer{Timeout: 10 * time.Second}
	for _, a := range addrs {
		if err := p.Check(a); err != nil {
			refused = err
			continue
		}
		// The checked address itself, never the name again.
		return d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
	}
	if refused == nil {
		refused = fmt.Errorf("%s has no address", host)
	}
	return nil, fmt.Errorf("connect to %s: %w", host, refused)
}

// Client is an HTTP client whose connections follow the policy: no
// proxy (it would connect on pncd's behalf to an address never checked),
// no redirects.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         p.DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return ErrRedirect },
	}
}
