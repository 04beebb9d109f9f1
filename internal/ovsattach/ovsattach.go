// Package ovsattach is the switch-side half of op25b's provisioning: the code
// behind `op25bctl ovs attach BRIDGE --controllers tcp:IP:PORT,...` and
// `op25bctl ovs detach BRIDGE` (docs/operations.md), run on a PoP's OVS host.
//
// Attach puts a bridge in the only configuration op25b can enforce on:
// protocols=OpenFlow13 (the controller speaks OpenFlow 1.3 only),
// fail-mode=secure (with "standalone", ovs-vswitchd deletes controller flows
// and falls back to MAC learning when no controller is reachable, which
// would open the port-25 hole exactly when the control plane is down) and one
// controller target per op25bd replica. It then reads every setting back and
// fails unless the bridge really is in that state.
//
// Detach removes the controller targets and deliberately leaves (and
// re-asserts) fail-mode=secure: the installed flows stay in place and keep
// enforcing, and OVS never turns the bridge into a learning switch. Removing
// op25b's flows is a separate, explicit operator decision.
//
// It sits outside the policy → flows → switch → status pipeline: it never
// touches flows, only the bridge's OVSDB configuration, through
// github.com/digitalocean/go-openvswitch (which shells out to ovs-vsctl).
package ovsattach

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/digitalocean/go-openvswitch/ovs"
)

// Sentinel errors callers may branch on (op25bctl maps them to its one-line
// error; tests assert them).
var (
	// ErrBridgeNotFound: the local OVS has no bridge of that name.
	ErrBridgeNotFound = errors.New("bridge not found")
	// ErrInvalidTarget: a controller target is not tcp:IP:PORT or ssl:IP:PORT.
	ErrInvalidTarget = errors.New("invalid controller target")
	// ErrVerify: OVS accepted the change but reading it back shows
	// something else (another tool racing us, or an OVS that ignored it).
	ErrVerify = errors.New("bridge configuration not as requested")
)

const (
	// protocolOpenFlow13 is the only version op25b's controller negotiates.
	protocolOpenFlow13 = "OpenFlow13"
	// failModeSecure keeps installed flows and never falls back to
	// standalone learning when controllers are unreachable (ovs-vswitchd(8),
	// "fail_mode").
	failModeSecure = "secure"
	// vsctlTimeoutSeconds bounds each ovs-vsctl call so a wedged ovsdb-server
	// yields an error instead of hanging the operator's shell.
	vsctlTimeoutSeconds = 10
)

// Attach configures bridge for op25b: protocols=OpenFlow13, fail-mode=secure
// and exactly the given controller targets, then verifies all three by
// reading them back. It is idempotent: when the bridge is already in that
// state nothing is written, so re-running it does not drop and re-open the
// OpenFlow connections to the replicas.
//
// Targets are validated before anything is written (ovs-vsctl itself only
// warns about a malformed target and stores it), so a typo changes nothing.
func Attach(ctx context.Context, bridge string, controllers []string) error {
	targets, err := ParseTargets(controllers)
	if err != nil {
		return fmt.Errorf("attach %s: %w", bridge, err)
	}
	c := newClient(ctx)
	if err := requireBridge(c, bridge); err != nil {
		return fmt.Errorf("attach %s: %w", bridge, err)
	}
	current, err := readState(ctx, c, bridge)
	if err != nil {
		return fmt.Errorf("attach %s: %w", bridge, err)
	}
	want := state{protocols: []string{protocolOpenFlow13}, failMode: failModeSecure, controllers: sortedCopy(targets)}
	if !current.equal(want) {
		restore, err := preserveFlows(ctx, bridge, hasPrimary(current.controllers), true)
		if err != nil {
			return fmt.Errorf("attach %s: %w", bridge, err)
		}
		// One ovs-vsctl invocation is one OVSDB transaction: fail-mode,
		// protocols and targets change together, so the bridge is never
		// seen with controllers but fail-mode standalone, or with
		// OpenFlow10 targets. The library's SetController takes a single
		// target and each of its setters is its own transaction, hence
		// one plain ovs-vsctl transaction for the write; the reads and
		// checks go through the library.
		args := []string{
			"--", "set-fail-mode", bridge, failModeSecure,
			"--", "set", "bridge", bridge, "protocols=" + protocolOpenFlow13,
			"--", "set-controller", bridge,
		}
		args = append(args, targets...)
		if _, err := vsctl(ctx, args...); err != nil {
			return fmt.Errorf("attach %s: %w", bridge, err)
		}
		if err := restore(); err != nil {
			return fmt.Errorf("attach %s: %w", bridge, err)
		}
	}
	got, err := readState(ctx, c, bridge)
	if err != nil {
		return fmt.Errorf("attach %s: verify: %w", bridge, err)
	}
	if !got.equal(want) {
		return fmt.Errorf("attach %s: %w: want %s, have %s", bridge, ErrVerify, want, got)
	}
	return nil
}

// Detach removes every controller target of bridge and keeps it in
// fail-mode=secure (setting it if needed), then verifies both. The flows
// already installed are left untouched: a detached bridge keeps enforcing
// its last policy rather than opening the hole. Detaching a bridge that has
// no controllers succeeds.
func Detach(ctx context.Context, bridge string) error {
	c := newClient(ctx)
	if err := requireBridge(c, bridge); err != nil {
		return fmt.Errorf("detach %s: %w", bridge, err)
	}
	current, err := readState(ctx, c, bridge)
	if err != nil {
		return fmt.Errorf("detach %s: %w", bridge, err)
	}
	restore, err := preserveFlows(ctx, bridge, hasPrimary(current.controllers), false)
	if err != nil {
		return fmt.Errorf("detach %s: %w", bridge, err)
	}
	// Same transaction for both, so that there is no instant with no
	// controller and fail-mode standalone.
	if _, err := vsctl(ctx,
		"--", "set-fail-mode", bridge, failModeSecure,
		"--", "del-controller", bridge); err != nil {
		return fmt.Errorf("detach %s: %w", bridge, err)
	}
	if err := restore(); err != nil {
		return fmt.Errorf("detach %s: %w", bridge, err)
	}
	got, err := readState(ctx, c, bridge)
	if err != nil {
		return fmt.Errorf("detach %s: verify: %w", bridge, err)
	}
	if got.failMode != failModeSecure || len(got.controllers) != 0 {
		return fmt.Errorf("detach %s: %w: want fail-mode secure and no controllers, have %s", bridge, ErrVerify, got)
	}
	return nil
}

// ParseTargets validates controller targets as OVS active connection
// methods op25b supports, "tcp:IP:PORT" or "ssl:IP:PORT" (IPv6 in brackets:
// "tcp:[::1]:6653"), and returns them canonicalised (an IPv6 address in
// netip form). Entries may themselves be comma lists, as typed after
// --controllers. Empty entries, host names (ovs-vswitchd resolves them only
// once at connect time), port 0 and duplicates are rejected.
func ParseTargets(controllers []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, entry := range controllers {
		for _, raw := range strings.Split(entry, ",") {
			t := strings.TrimSpace(raw)
			canon, err := parseTarget(t)
			if err != nil {
				return nil, err
			}
			if seen[canon] {
				return nil, fmt.Errorf("%w %q: listed twice", ErrInvalidTarget, t)
			}
			seen[canon] = true
			out = append(out, canon)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no controller targets given (want tcp:IP:PORT,...)", ErrInvalidTarget)
	}
	return out, nil
}

func parseTarget(t string) (string, error) {
	scheme, rest, ok := strings.Cut(t, ":")
	if !ok || (scheme != "tcp" && scheme != "ssl") {
		return "", fmt.Errorf("%w %q: want tcp:IP:PORT or ssl:IP:PORT", ErrInvalidTarget, t)
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		return "", fmt.Errorf("%w %q: want tcp:IP:PORT or ssl:IP:PORT (IPv6 as [ADDR]:PORT): %v", ErrInvalidTarget, t, err)
	}
	if ap.Port() == 0 {
		return "", fmt.Errorf("%w %q: port must be 1..65535", ErrInvalidTarget, t)
	}
	if ap.Addr().Zone() != "" {
		return "", fmt.Errorf("%w %q: zoned IPv6 addresses are not supported", ErrInvalidTarget, t)
	}
	return scheme + ":" + netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String(), nil
}

// hasPrimary reports whether targets include a primary controller, i.e. an
// active connection ovs-vswitchd dials (tcp:, ssl:, unix:); passive
// "service" listeners (ptcp:, pssl:, punix:) do not count.
func hasPrimary(targets []string) bool {
	for _, t := range targets {
		if strings.HasPrefix(t, "tcp:") || strings.HasPrefix(t, "ssl:") || strings.HasPrefix(t, "unix:") {
			return true
		}
	}
	return false
}

// preserveFlows works around a measured OVS behaviour: when a bridge gains
// its first primary controller or loses its last one, ovs-vswitchd flushes
// the bridge's whole flow table (bridge_configure_remotes() in
// vswitchd/bridge.c calls ofproto_flush_flows() when "had primary" differs
// from "has primary"; OVS 3.1 does it, changing from one set of targets to
// another does not). Detach would otherwise wipe the enforcement it promises
// to keep, and Attach would wipe an operator's own forwarding flows.
//
// When the change will flip the primary-controller state it dumps every
// flow first; the returned restore re-adds them in one ONF bundle. Between
// the flush and the restore the bridge is fail-mode secure with an empty
// table, which drops every packet (OpenFlow 1.3 §5.4 table-miss): a
// millisecond outage, never a hole. If a controller connects and installs
// flows in that window, restoring may briefly reinstate older actions for
// the same match; the controller's audit repairs that.
func preserveFlows(ctx context.Context, bridge string, hadPrimary, willHavePrimary bool) (restore func() error, err error) {
	if hadPrimary == willHavePrimary {
		return func() error { return nil }, nil
	}
	// Negotiate any version: before Attach the bridge may not speak 1.3
	// yet. --no-stats output is ovs-ofctl add-flows syntax.
	dump, err := ofctl(ctx, nil, "-O", "OpenFlow10,OpenFlow11,OpenFlow12,OpenFlow13,OpenFlow14,OpenFlow15",
		"dump-flows", "--no-stats", bridge)
	if err != nil {
		return nil, fmt.Errorf("save flows before the controller change: %w", err)
	}
	if len(bytes.TrimSpace(dump)) == 0 {
		return func() error { return nil }, nil
	}
	return func() error {
		n := bytes.Count(bytes.TrimSpace(dump), []byte("\n")) + 1
		if _, err := ofctl(ctx, bytes.NewReader(dump), "-O", protocolOpenFlow13, "--bundle", "add-flows", bridge, "-"); err != nil {
			return fmt.Errorf("restore %d flows flushed by OVS on the controller change (bridge left fail-mode secure, dropping all traffic): %w\n%s", n, err, dump)
		}
		return nil
	}, nil
}

// state is the part of a bridge's OVSDB row that Attach and Detach own.
type state struct {
	protocols   []string
	failMode    string
	controllers []string // sorted
}

func (s state) equal(o state) bool {
	return slices.Equal(s.protocols, o.protocols) && s.failMode == o.failMode &&
		slices.Equal(s.controllers, o.controllers)
}

func (s state) String() string {
	fm := s.failMode
	if fm == "" {
		fm = "(unset, i.e. standalone)"
	}
	return fmt.Sprintf("protocols=%s fail-mode=%s controllers=%s",
		strings.Join(s.protocols, ","), fm, strings.Join(s.controllers, ","))
}

// readState reads back what Attach/Detach set, through the library where it
// parses OVS's output correctly (fail mode, controllers).
// VSwitch.Get.Bridge cannot be used for protocols: it json-decodes the
// output of `ovs-vsctl get`, which is OVSDB's "[OpenFlow10, OpenFlow13]"
// notation, not JSON.
func readState(ctx context.Context, c *ovs.Client, bridge string) (state, error) {
	var s state
	fm, err := c.VSwitch.GetFailMode(bridge)
	if err != nil {
		return s, fmt.Errorf("get fail-mode: %w", err)
	}
	s.failMode = strings.TrimSpace(string(fm))
	ctl, err := c.VSwitch.GetController(bridge)
	if err != nil {
		return s, fmt.Errorf("get controllers: %w", err)
	}
	s.controllers = sortedCopy(strings.Fields(ctl))
	out, err := vsctl(ctx, "--bare", "--columns=protocols", "list", "bridge", bridge)
	if err != nil {
		return s, fmt.Errorf("get protocols: %w", err)
	}
	s.protocols = sortedCopy(strings.Fields(string(out)))
	return s, nil
}

// requireBridge turns "no such bridge" into ErrBridgeNotFound before any
// write, instead of surfacing ovs-vsctl's message from the middle of a
// transaction.
func requireBridge(c *ovs.Client, bridge string) error {
	if bridge == "" {
		return fmt.Errorf("%w: empty bridge name", ErrBridgeNotFound)
	}
	bridges, err := c.VSwitch.ListBridges()
	if err != nil {
		return fmt.Errorf("list bridges: %w", err)
	}
	if !slices.Contains(bridges, bridge) {
		return fmt.Errorf("%w: no bridge named %q in the local Open vSwitch", ErrBridgeNotFound, bridge)
	}
	return nil
}

// newClient returns a go-openvswitch client whose commands die with ctx and
// carry a bounded --timeout.
func newClient(ctx context.Context) *ovs.Client {
	return ovs.New(
		ovs.Timeout(vsctlTimeoutSeconds),
		ovs.Exec(func(cmd string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, cmd, args...).CombinedOutput()
		}),
	)
}

// vsctl runs one ovs-vsctl transaction and reports its stderr on failure.
func vsctl(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--timeout=" + strconv.Itoa(vsctlTimeoutSeconds)}, args...)
	cmd := exec.CommandContext(ctx, "ovs-vsctl", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return nil, fmt.Errorf("ovs-vsctl %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// ofctl runs ovs-ofctl with stdin (may be nil) and reports stderr on failure.
func ofctl(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ovs-ofctl", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = stdin
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ovs-ofctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}
