package multiaddr

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Bounds on resolving /dnsaddr, go-libp2p's (p2p/net/swarm/swarm_dial.go:
// maximumDNSADDRRecursion, maximumResolvedAddresses): a chain of TXT
// records cannot make a dial follow it without end, nor a record fan out
// into thousands of addresses.
const (
	MaxDNSAddrDepth = 4
	MaxDNSAddrs     = 100
)

// LookupTXT looks up the TXT records of a DNS name, as
// net.Resolver.LookupTXT does.
type LookupTXT func(ctx context.Context, name string) ([]string, error)

// ResolveDNSAddr resolves an address that starts with /dnsaddr/<domain>
// through the "dnsaddr=<multiaddr>" TXT records of _dnsaddr.<domain>
// (multiformats/multiaddr protocols/DNSADDR.md), following records that
// are /dnsaddr themselves up to MaxDNSAddrDepth levels and keeping at most
// MaxDNSAddrs addresses. When m ends in /p2p/<id>, only records for that
// peer are kept, and the rest of m after the domain (its /p2p/ part) is
// what the records must end with. Other addresses come back as they are.
func ResolveDNSAddr(ctx context.Context, lookup LookupTXT, m Multiaddr) ([]Multiaddr, error) {
	var out []Multiaddr
	err := resolveDNSAddr(ctx, lookup, m, 0, &out)
	if len(out) == 0 && err == nil {
		err = fmt.Errorf("multiaddr: %s resolves to no address", m)
	}
	return out, err
}

func resolveDNSAddr(ctx context.Context, lookup LookupTXT, m Multiaddr, depth int, out *[]Multiaddr) error {
	if len(m) == 0 || m[0].Protocol().Code != P_DNSADDR {
		*out = append(*out, m)
		return nil
	}
	if depth == MaxDNSAddrDepth {
		return fmt.Errorf("multiaddr: %s: /dnsaddr records nested more than %d deep", m, MaxDNSAddrDepth)
	}
	domain := m[0].Value()
	suffix := m[1:] // e.g. /p2p/<id>, which every record must end with
	txts, err := lookup(ctx, "_dnsaddr."+domain)
	if err != nil {
		return fmt.Errorf("multiaddr: resolve %s: %w", m, err)
	}
	var errs []error
	for _, txt := range txts {
		s, ok := strings.CutPrefix(txt, "dnsaddr=")
		if !ok {
			continue
		}
		a, err := NewMultiaddr(s)
		if err != nil || !endsWith(a, suffix) {
			continue
		}
		if len(*out) >= MaxDNSAddrs {
			return nil
		}
		if err := resolveDNSAddr(ctx, lookup, a, depth+1, out); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func endsWith(a, suffix Multiaddr) bool {
	if len(suffix) > len(a) {
		return false
	}
	return a[len(a)-len(suffix):].Equal(suffix)
}
