package ovsattach

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
)

// Targets in these tests point at loopback ports where nothing listens
// (never op25bd's default 6653): a controller answering there would take the
// test bridge over and could delete its op25b-cookie flows.
const (
	target1 = "tcp:127.0.0.1:1"
	target2 = "tcp:127.0.0.1:2"
	target3 = "tcp:127.0.0.1:3"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bridgeState reads the bridge back with plain ovs-vsctl, independently of
// the package's own readState, so a bug there cannot hide a wrong setting.
func bridgeState(t *testing.T, bridge string) (protocols, failMode string, controllers []string) {
	t.Helper()
	protocols = strings.TrimSpace(testenv.Run(t, "ovs-vsctl", "get", "bridge", bridge, "protocols"))
	failMode = strings.TrimSpace(testenv.Run(t, "ovs-vsctl", "get-fail-mode", bridge))
	controllers = strings.Fields(testenv.Run(t, "ovs-vsctl", "get-controller", bridge))
	slices.Sort(controllers)
	return protocols, failMode, controllers
}

// controllerUUIDs identifies the Controller rows; an idempotent re-attach
// must not replace them (replacing would reconnect every replica).
func controllerUUIDs(t *testing.T, bridge string) string {
	t.Helper()
	return strings.TrimSpace(testenv.Run(t, "ovs-vsctl", "get", "bridge", bridge, "controller"))
}

// looseBridge turns a test bridge into what an operator might start from:
// every OpenFlow version allowed and the default (standalone) fail mode.
func looseBridge(t *testing.T) testenv.Bridge {
	t.Helper()
	br := testenv.NewBridge(t, "")
	testenv.Run(t, "ovs-vsctl", "set", "bridge", br.Name, "protocols=OpenFlow10,OpenFlow13", "--", "del-fail-mode", br.Name)
	return br
}

func TestAttachSetsAndVerifies(t *testing.T) {
	br := looseBridge(t)
	ctx := testContext(t)
	targets := []string{target1, "tcp:[::1]:2,ssl:127.0.0.2:3"}
	if err := Attach(ctx, br.Name, targets); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	protocols, failMode, controllers := bridgeState(t, br.Name)
	if protocols != "[OpenFlow13]" {
		t.Errorf("protocols = %s, want [OpenFlow13]", protocols)
	}
	if failMode != "secure" {
		t.Errorf("fail-mode = %q, want secure", failMode)
	}
	want := []string{"ssl:127.0.0.2:3", target1, "tcp:[::1]:2"}
	if !slices.Equal(controllers, want) {
		t.Errorf("controllers = %v, want %v", controllers, want)
	}
}

func TestAttachIsIdempotent(t *testing.T) {
	br := looseBridge(t)
	ctx := testContext(t)
	targets := []string{target1, target2}
	if err := Attach(ctx, br.Name, targets); err != nil {
		t.Fatalf("first Attach: %v", err)
	}
	before := controllerUUIDs(t, br.Name)
	// Same set in another order: still nothing to change.
	if err := Attach(ctx, br.Name, []string{target2, target1}); err != nil {
		t.Fatalf("second Attach: %v", err)
	}
	if after := controllerUUIDs(t, br.Name); after != before {
		t.Errorf("re-attach replaced the controller rows (%s → %s): replicas would reconnect", before, after)
	}

	// A different set replaces the targets, not appends to them.
	if err := Attach(ctx, br.Name, []string{target3}); err != nil {
		t.Fatalf("Attach with new targets: %v", err)
	}
	if _, _, controllers := bridgeState(t, br.Name); !slices.Equal(controllers, []string{target3}) {
		t.Errorf("controllers = %v, want only %s", controllers, target3)
	}
}

func TestDetachKeepsFailModeSecureAndFlows(t *testing.T) {
	br := looseBridge(t)
	ctx := testContext(t)
	if err := Attach(ctx, br.Name, []string{target1}); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	// A flow standing in for op25b's enforcement: it must survive detach.
	br.Ofctl(t, "add-flow", br.Name, "cookie=0x25b0000000000001,priority=10,tcp,tp_dst=25,actions=drop")
	if err := Detach(ctx, br.Name); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	_, failMode, controllers := bridgeState(t, br.Name)
	if failMode != "secure" {
		t.Errorf("fail-mode after detach = %q, want secure (standalone would open the hole)", failMode)
	}
	if len(controllers) != 0 {
		t.Errorf("controllers after detach = %v, want none", controllers)
	}
	if dump := br.Ofctl(t, "dump-flows", br.Name); !strings.Contains(dump, "tp_dst=25") {
		t.Errorf("detach removed the enforcement flow:\n%s", dump)
	}
	// Detaching again is not an error.
	if err := Detach(ctx, br.Name); err != nil {
		t.Errorf("second Detach: %v", err)
	}
}

// OVS flushes all flows when a bridge gains its first controller; attach
// must not lose the flows an operator (or a previous op25b) installed.
func TestAttachKeepsExistingFlows(t *testing.T) {
	br := looseBridge(t)
	testenv.Run(t, "ovs-ofctl", "-O", "OpenFlow13", "add-flow", br.Name, "table=0,priority=5,arp,actions=NORMAL")
	testenv.Run(t, "ovs-ofctl", "-O", "OpenFlow13", "add-flow", br.Name,
		"cookie=0x25b0000000000002,table=1,priority=1016,ip,nw_src=10.1.0.0/16,actions=write_metadata:0x5/0xff,goto_table:2")
	if err := Attach(testContext(t), br.Name, []string{target1}); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	dump := br.Ofctl(t, "dump-flows", br.Name)
	for _, want := range []string{"priority=5,arp actions=NORMAL", "nw_src=10.1.0.0/16 actions=write_metadata:0x5/0xff,goto_table:2"} {
		if !strings.Contains(dump, want) {
			t.Errorf("flow %q lost by attach:\n%s", want, dump)
		}
	}
}

func TestDetachOfStandaloneBridgeMakesItSecure(t *testing.T) {
	br := looseBridge(t)
	if err := Detach(testContext(t), br.Name); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if _, failMode, _ := bridgeState(t, br.Name); failMode != "secure" {
		t.Errorf("fail-mode = %q, want secure", failMode)
	}
}

func TestMissingBridge(t *testing.T) {
	testenv.RequireOVS(t)
	ctx := testContext(t)
	name := testenv.UniqueName("nobr")
	err := Attach(ctx, name, []string{target1})
	if !errors.Is(err, ErrBridgeNotFound) || !strings.Contains(err.Error(), name) {
		t.Errorf("Attach to missing bridge: err = %v, want ErrBridgeNotFound naming %s", err, name)
	}
	err = Detach(ctx, name)
	if !errors.Is(err, ErrBridgeNotFound) {
		t.Errorf("Detach of missing bridge: err = %v, want ErrBridgeNotFound", err)
	}
	if out, _ := testenv.RunErr("ovs-vsctl", "br-exists", name); strings.TrimSpace(out) != "" {
		t.Errorf("br-exists printed %q", out)
	}
}

func TestInvalidTargetChangesNothing(t *testing.T) {
	br := looseBridge(t)
	ctx := testContext(t)
	if err := Attach(ctx, br.Name, []string{target1}); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	for _, bad := range [][]string{
		{"tcp:127.0.0.1"},
		{"127.0.0.1:6653"},
		{"tcp:controller.example:6653"},
		{"udp:127.0.0.1:6653"},
		{"tcp:127.0.0.1:0"},
		{"tcp:127.0.0.1:70000"},
		{"tcp:::1:6653"},
		{"tcp:127.0.0.1:6653,"},
		{"tcp:127.0.0.1:6653", "tcp:127.0.0.1:6653"},
		{},
	} {
		err := Attach(ctx, br.Name, bad)
		if !errors.Is(err, ErrInvalidTarget) {
			t.Errorf("Attach(%q): err = %v, want ErrInvalidTarget", bad, err)
		}
	}
	if _, _, controllers := bridgeState(t, br.Name); !slices.Equal(controllers, []string{target1}) {
		t.Errorf("a rejected attach changed the controllers to %v", controllers)
	}
}

func TestParseTargets(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{[]string{"tcp:127.0.0.1:6653"}, []string{"tcp:127.0.0.1:6653"}},
		{[]string{"tcp:10.0.0.1:6653, tcp:10.0.0.2:6653"}, []string{"tcp:10.0.0.1:6653", "tcp:10.0.0.2:6653"}},
		{[]string{"tcp:[2001:DB8::1]:6653"}, []string{"tcp:[2001:db8::1]:6653"}},
		{[]string{"ssl:[::ffff:10.0.0.1]:6653"}, []string{"ssl:10.0.0.1:6653"}},
	} {
		got, err := ParseTargets(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseTargets(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseTargets(f *testing.F) {
	for _, s := range []string{"tcp:127.0.0.1:6653", "tcp:[::1]:1,ssl:1.2.3.4:5", "", ",", "tcp:[fe80::1%eth0]:6653"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTargets([]string{s})
		if err != nil {
			return
		}
		// Canonical output parses to itself.
		again, err := ParseTargets(got)
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("ParseTargets(%q) = %v, re-parse = %v, %v", s, got, again, err)
		}
	})
}
