package multiaddr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

const (
	idA = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
	idB = "QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa"
)

// fakeDNS answers TXT lookups from a map and counts them.
type fakeDNS struct {
	records map[string][]string
	lookups int
}

func (f *fakeDNS) lookup(_ context.Context, name string) ([]string, error) {
	f.lookups++
	r, ok := f.records[name]
	if !ok {
		return nil, errors.New("no such host")
	}
	return r, nil
}

func TestResolveDNSAddr(t *testing.T) {
	dns := &fakeDNS{records: map[string][]string{
		"_dnsaddr.bootstrap.example": {
			"dnsaddr=/dnsaddr/ams.bootstrap.example/p2p/" + idA,
			"dnsaddr=/dnsaddr/sjc.bootstrap.example/p2p/" + idB,
			"not a dnsaddr record",
			"dnsaddr=garbage",
		},
		"_dnsaddr.ams.bootstrap.example": {
			"dnsaddr=/ip4/192.0.2.1/tcp/4001/p2p/" + idA,
			"dnsaddr=/ip4/192.0.2.1/udp/4001/quic-v1/p2p/" + idA,
		},
		"_dnsaddr.sjc.bootstrap.example": {"dnsaddr=/ip4/192.0.2.2/tcp/4001/p2p/" + idB},
		"_dnsaddr.loop.example":          {"dnsaddr=/dnsaddr/loop.example"},
	}}
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"/dnsaddr/bootstrap.example/p2p/" + idA, []string{"/ip4/192.0.2.1/tcp/4001/p2p/" + idA, "/ip4/192.0.2.1/udp/4001/quic-v1/p2p/" + idA}, false},
		{"/dnsaddr/bootstrap.example/p2p/" + idB, []string{"/ip4/192.0.2.2/tcp/4001/p2p/" + idB}, false},
		{"/ip4/192.0.2.9/tcp/1/p2p/" + idA, []string{"/ip4/192.0.2.9/tcp/1/p2p/" + idA}, false},
		{"/dnsaddr/missing.example/p2p/" + idA, nil, true},
		{"/dnsaddr/loop.example", nil, true}, // nests past MaxDNSAddrDepth
	} {
		got, err := ResolveDNSAddr(context.Background(), dns.lookup, StringCast(tc.in))
		var gs []string
		for _, a := range got {
			gs = append(gs, a.String())
		}
		if (err != nil) != tc.wantErr || !slices.Equal(gs, tc.want) {
			t.Errorf("ResolveDNSAddr(%s) = %v, %v; want %v (error %v)", tc.in, gs, err, tc.want, tc.wantErr)
		}
	}
}

// TestResolveDNSAddrBounded: a record set that fans out is cut at
// MaxDNSAddrs addresses.
func TestResolveDNSAddrBounded(t *testing.T) {
	var txts []string
	for i := range 1000 {
		txts = append(txts, fmt.Sprintf("dnsaddr=/ip4/192.0.2.%d/tcp/%d", i%250, 1000+i))
	}
	dns := &fakeDNS{records: map[string][]string{"_dnsaddr.wide.example": txts}}
	got, err := ResolveDNSAddr(context.Background(), dns.lookup, StringCast("/dnsaddr/wide.example"))
	if err != nil || len(got) != MaxDNSAddrs {
		t.Errorf("got %d addresses, %v; want %d", len(got), err, MaxDNSAddrs)
	}
}
