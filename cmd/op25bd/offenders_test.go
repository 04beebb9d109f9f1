package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/client"
	"github.com/op25b/op25b/internal/testenv"
)

// TestOffendersAcrossReplicas: two op25bd on one etcd, two bridges (each
// mastered by one replica or the other, as rendezvous hashing decides),
// real connection attempts from network namespaces. Whichever replica is
// asked, GET /v1/offenders lists every source with exactly the attempts
// sent, its pool, bridge and pop; the pop filter selects one bridge.
func TestOffendersAcrossReplicas(t *testing.T) {
	testenv.RequireOVS(t)
	etcd := testenv.EmbeddedEtcd(t)
	eps := strings.Join(etcd.Endpoints, ",")
	a := startDaemon(t, "op25b-a", "--etcd-endpoints", eps)
	b := startDaemon(t, "op25b-b", "--etcd-endpoints", eps)
	brA, brB := testenv.NewBridge(t, ""), testenv.NewBridge(t, "")
	srcA, srcB, srcB2 := netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.1.0.6"), netip.MustParseAddr("10.1.0.7")
	hostA := brA.AddHost(t, 1, srcA)
	hostB := brB.AddHost(t, 1, srcB, srcB2)
	for _, br := range []testenv.Bridge{brA, brB} {
		br.SetController(t, "tcp:"+a.openflow, "tcp:"+b.openflow)
	}
	doc := fmt.Sprintf(`{"pools":[{"name":"tokyo-dyn","prefix":"10.1.0.0/16","kind":"dynamic","service":"ftth"}],
 "relays":[{"name":"msa","prefix":"192.0.2.25/32"}],"destinations":[],
 "services":[{"name":"ftth","phases":[{"block":"all","relays":true}]}],
 "bridges":[{"dpid":"%s","name":"tokyo-1-sub-a","pop":"tokyo-1"},{"dpid":"%s","name":"osaka-1-sub-a","pop":"osaka-1"}]}`, brA.DPID, brB.DPID)
	rev := putConfig(t, a.api, doc)
	testenv.Eventually(t, 60*time.Second, "both bridges applied", func() bool {
		s, err := getStatus(b.api)
		if err != nil || len(s.Bridges) != 2 {
			return false
		}
		for _, br := range s.Bridges {
			if !br.Connected || br.AppliedRevision < rev || br.Master == "" {
				return false
			}
		}
		return true
	})
	for _, x := range []struct {
		h   *testenv.Host
		src netip.Addr
		dst string
		n   int
	}{{hostA, srcA, "203.0.113.25", 4}, {hostB, srcB, "203.0.113.25", 7}, {hostB, srcB, "203.0.113.26", 2}, {hostB, srcB2, "192.0.2.25", 3}} {
		if err := x.h.ConnectAttempts(x.src, netip.MustParseAddr(x.dst), 25, x.n); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		"10.1.0.6": "tokyo-dyn " + brB.DPID.String() + " osaka-1 attempts=9 destinations=2 observed=false",
		"10.1.0.5": "tokyo-dyn " + brA.DPID.String() + " tokyo-1 attempts=4 destinations=1 observed=false",
	}
	for _, d := range []*daemon{a, b} {
		c, err := client.New(d.api, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var last *apitypes.Offenders
		testenv.Eventually(t, 60*time.Second, "replica "+d.id+" lists every offender", func() bool {
			got, err := c.Offenders(context.Background(), client.OffendersQuery{})
			if err != nil {
				return false
			}
			last = got
			return fmt.Sprint(offenderLines(got)) == fmt.Sprint(want) && !got.Truncated
		})
		if last.Offenders[0].Src != "10.1.0.6" {
			t.Errorf("%s: most attempts first: %+v", d.id, last.Offenders)
		}
		got, err := c.Offenders(context.Background(), client.OffendersQuery{Pop: "tokyo-1", Since: 10 * time.Minute, Limit: 5})
		if err != nil || len(got.Offenders) != 1 || got.Offenders[0].Src != "10.1.0.5" {
			t.Errorf("%s: pop tokyo-1: %+v %v", d.id, got, err)
		}
	}
}

func offenderLines(r *apitypes.Offenders) map[string]string {
	out := map[string]string{}
	for _, o := range r.Offenders {
		out[o.Src] = fmt.Sprintf("%s %s %s attempts=%d destinations=%d observed=%v", o.Pool, o.Bridge, o.Pop, o.Attempts, o.Destinations, o.Observed)
	}
	return out
}
