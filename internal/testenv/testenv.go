// Package testenv starts and tears down the real parts op25b's tests run
// against: Open vSwitch (userspace datapath) and netdev bridges. Tests call
// these helpers instead of assuming a prepared machine, so `go test ./...`
// works on a fresh box where `make deps` installed the packages.
//
// When the packages are missing, tests fail under CI (CI=true) and skip
// otherwise, so a developer without OVS can still run the pure tests.
package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

var (
	ovsOnce sync.Once
	ovsErr  error
)

// RequireOVS makes sure ovsdb-server and ovs-vswitchd are running, starting
// them with ovs-ctl if needed (there is no systemd on the test machines).
func RequireOVS(t testing.TB) {
	t.Helper()
	ovsOnce.Do(func() { ovsErr = startOVS() })
	if ovsErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Open vSwitch is required under CI: %v", ovsErr)
		}
		t.Skipf("Open vSwitch not available (run `make deps`): %v", ovsErr)
	}
}

func startOVS() error {
	if _, err := exec.LookPath("ovs-vsctl"); err != nil {
		return fmt.Errorf("ovs-vsctl not installed: %w", err)
	}
	if exec.Command("ovs-vsctl", "--timeout=2", "show").Run() == nil {
		return nil
	}
	out, err := exec.Command("/usr/share/openvswitch/scripts/ovs-ctl", "start", "--system-id=random").CombinedOutput()
	if err != nil {
		return fmt.Errorf("ovs-ctl start: %v: %s", err, out)
	}
	for i := 0; i < 50; i++ {
		if exec.Command("ovs-vsctl", "--timeout=2", "show").Run() == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("ovs-vsctl show still failing after ovs-ctl start")
}

// Run executes a command and fails the test with its output on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := RunErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// RunErr executes a command and returns its combined output.
func RunErr(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	return buf.String(), err
}

// UniqueName returns prefix plus random hex, at most 15 characters (the
// Linux interface-name limit, which OVS bridge names share).
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

// Bridge is a netdev bridge created for one test.
type Bridge struct {
	Name string
	DPID topology.DPID
}

// NewBridge creates a userspace (netdev) OpenFlow 1.3 bridge in fail-mode
// secure with a fixed datapath id, and deletes it when the test ends.
// dpid may be "" for a random one. datapath_type must be set in the same
// ovs-vsctl call: a bridge created without it is unusable on this kernel.
func NewBridge(t testing.TB, dpid topology.DPID) Bridge {
	t.Helper()
	RequireOVS(t)
	if dpid == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		b[0] = 0 // keep it readable and clear of OVS's own reserved patterns
		dpid = topology.DPID(hex.EncodeToString(b))
	}
	name := UniqueName("op")
	Run(t, "ovs-vsctl", "--timeout=10", "add-br", name,
		"--", "set", "bridge", name, "datapath_type=netdev",
		"protocols=OpenFlow13", "fail-mode=secure",
		"other-config:datapath-id="+string(dpid))
	t.Cleanup(func() {
		_, _ = RunErr("ovs-vsctl", "--timeout=10", "--if-exists", "del-br", name)
	})
	return Bridge{Name: name, DPID: dpid}
}

// NewBridges creates netdev bridges like NewBridge, one per dpid, each
// with the controller targets given, in a single ovs-vsctl transaction
// (creating a hundred bridges one call at a time takes minutes on a loaded
// machine), and deletes them together when the test ends. Each bridge
// retries a lost controller every second instead of backing off to 8 s.
func NewBridges(t testing.TB, dpids []topology.DPID, targets ...string) []Bridge {
	t.Helper()
	RequireOVS(t)
	args := []string{"--timeout=60"}
	var out []Bridge
	del := []string{"--timeout=60"}
	for i, dpid := range dpids {
		b := Bridge{Name: UniqueName("op"), DPID: dpid}
		out = append(out, b)
		args = append(args, "--", "add-br", b.Name,
			"--", "set", "bridge", b.Name, "datapath_type=netdev", "protocols=OpenFlow13", "fail-mode=secure",
			"other-config:datapath-id="+string(dpid))
		if len(targets) > 0 {
			var refs []string
			for j, target := range targets {
				ref := fmt.Sprintf("@c%d_%d", i, j)
				refs = append(refs, ref)
				args = append(args, "--", "--id="+ref, "create", "controller", "target=\""+target+"\"", "max_backoff=1000")
			}
			args = append(args, "--", "set", "bridge", b.Name, "controller=["+strings.Join(refs, ",")+"]")
		}
		del = append(del, "--", "--if-exists", "del-br", b.Name)
	}
	Run(t, "ovs-vsctl", args...)
	t.Cleanup(func() { _, _ = RunErr("ovs-vsctl", del...) })
	return out
}

// AddPort adds an internal port with a fixed OpenFlow port number, so
// ofproto/trace has an in_port to use.
func (b Bridge) AddPort(t testing.TB, ofport int) string {
	t.Helper()
	port := UniqueName("p")
	Run(t, "ovs-vsctl", "--timeout=10", "add-port", b.Name, port, "--",
		"set", "interface", port, "type=internal", fmt.Sprintf("ofport_request=%d", ofport))
	return port
}

// Ofctl runs ovs-ofctl with OpenFlow 1.3 against the bridge.
func (b Bridge) Ofctl(t testing.TB, args ...string) string {
	t.Helper()
	full := append([]string{"-O", "OpenFlow13"}, args...)
	return Run(t, "ovs-ofctl", full...)
}

// Trace asks OVS for its own verdict on a packet and returns the last line
// ("Datapath actions: ..."). "drop" means dropped.
func (b Bridge) Trace(t testing.TB, packet string) string {
	t.Helper()
	out := Run(t, "ovs-appctl", "ofproto/trace", b.Name, packet)
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Datapath actions:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "Datapath actions:"))
		}
	}
	t.Fatalf("no datapath actions in trace of %q:\n%s", packet, out)
	return ""
}

// SetController points the bridge at an OpenFlow controller target
// ("tcp:127.0.0.1:6653"), several targets comma separated.
func (b Bridge) SetController(t testing.TB, targets ...string) {
	t.Helper()
	args := append([]string{"--timeout=10", "set-controller", b.Name}, targets...)
	Run(t, "ovs-vsctl", args...)
}
