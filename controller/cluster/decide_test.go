package cluster

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata/decide/*.txt")

// TestDecide runs the scripts in testdata/decide: each case describes one
// pass's view, then "----", then the actions decide returns, one per line.
// Run with -rewrite to regenerate the expected output, then review the diff.
//
// View lines (every one optional except me):
//
//	me r1 lease=1 epoch=1         this replica, its lease (0: none), the cluster epoch
//	   ttl=2s unconfirmed=3s      the lease's TTL and how long etcd has not confirmed it
//	   lease-gone                 etcd said the lease no longer exists
//	policy revision=7 bridges=01,02 [rejected]   a loaded snapshot (absent: not loaded)
//	local 01 02                   bridges with a session here
//	etcd document=7               etcd answered; its commit record's ModRevision
//	etcd unreachable              the read failed (also when no etcd line is given)
//	connected 01 r1@1 r2@2        connected/01/<replica> records, with their leases
//	lock 01 r2@2 create=10 mod=12 masters/01
//	master 01 1:10                we act as master of 01 with generation epoch:revision
//	dirty 01 / wrote 01 / known 01   the loop's memory
func TestDecide(t *testing.T) {
	files, err := filepath.Glob("testdata/decide/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata/decide: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) { runScript(t, file) })
	}
}

// scriptCase is one case of a script: its input lines (with comments) and
// expected output lines, and where it starts.
type scriptCase struct {
	line          int
	input, output []string
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := parseScript(string(data))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out strings.Builder
	for i, c := range cases {
		v, err := parseView(c.input)
		if err != nil {
			t.Fatalf("%s:%d: %v", file, c.line, err)
		}
		got := renderActions(decide(v))
		if want := strings.Join(c.output, "\n"); got != want && !*rewrite {
			t.Errorf("%s:%d:\n%s\n---- got:\n%s\n---- want:\n%s", file, c.line, strings.Join(c.input, "\n"), got, want)
		}
		if i > 0 {
			out.WriteString("\n")
		}
		fmt.Fprintf(&out, "%s\n----\n%s\n", strings.Join(c.input, "\n"), got)
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// parseScript splits a script into cases: input lines, "----", output
// lines up to a blank line.
func parseScript(s string) ([]scriptCase, error) {
	var cases []scriptCase
	var cur *scriptCase
	inOutput := false
	for i, line := range strings.Split(s, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			if cur != nil && !inOutput {
				return nil, fmt.Errorf("line %d: case without ----", cur.line)
			}
			cur, inOutput = nil, false
		case cur == nil:
			cases = append(cases, scriptCase{line: i + 1, input: []string{line}})
			cur = &cases[len(cases)-1]
		case line == "----":
			inOutput = true
		case inOutput:
			cur.output = append(cur.output, line)
		default:
			cur.input = append(cur.input, line)
		}
	}
	if cur != nil && !inOutput {
		return nil, fmt.Errorf("line %d: case without ----", cur.line)
	}
	return cases, nil
}

func parseView(lines []string) (view, error) {
	v := view{
		policy: policyView{bridges: map[topology.DPID]bool{}}, local: map[topology.DPID]bool{},
		masters: map[topology.DPID]uint64{}, dirty: map[topology.DPID]bool{}, wrote: map[topology.DPID]bool{}, known: map[topology.DPID]bool{},
	}
	etcd := func() *etcdView {
		if v.etcd == nil {
			v.etcd = &etcdView{connected: map[topology.DPID]map[string]clientv3.LeaseID{}, locks: map[topology.DPID]lock{}}
		}
		return v.etcd
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		args, kv := splitArgs(f[1:])
		var err error
		switch f[0] {
		case "me":
			v.me = args[0]
			v.lease = clientv3.LeaseID(atoi(kv["lease"], &err))
			v.epoch = uint64(atoi(kv["epoch"], &err))
			v.health.ttl = duration(kv["ttl"], &err)
			v.health.unconfirmed = duration(kv["unconfirmed"], &err)
			v.health.gone = hasArg(args, "lease-gone")
		case "policy":
			v.policy.loaded = true
			v.policy.revision = atoi(kv["revision"], &err)
			v.policy.rejected = hasArg(args, "rejected")
			for _, d := range strings.Split(kv["bridges"], ",") {
				if d != "" {
					v.policy.bridges[topology.DPID(d)] = true
				}
			}
		case "local", "dirty", "wrote", "known":
			set := map[string]map[topology.DPID]bool{"local": v.local, "dirty": v.dirty, "wrote": v.wrote, "known": v.known}[f[0]]
			for _, d := range args {
				set[topology.DPID(d)] = true
			}
		case "etcd":
			if hasArg(args, "unreachable") {
				continue
			}
			etcd().documentRevision = atoi(kv["document"], &err)
		case "connected":
			dpid := topology.DPID(args[0])
			for _, rl := range args[1:] {
				id, lease, _ := strings.Cut(rl, "@")
				if etcd().connected[dpid] == nil {
					v.etcd.connected[dpid] = map[string]clientv3.LeaseID{}
				}
				v.etcd.connected[dpid][id] = clientv3.LeaseID(atoi(lease, &err))
			}
		case "lock":
			holder, lease, _ := strings.Cut(args[1], "@")
			etcd().locks[topology.DPID(args[0])] = lock{holder: holder, lease: clientv3.LeaseID(atoi(lease, &err)),
				createRev: atoi(kv["create"], &err), modRev: atoi(kv["mod"], &err)}
		case "master":
			e, rev, _ := strings.Cut(args[1], ":")
			v.masters[topology.DPID(args[0])] = generation(uint64(atoi(e, &err)), atoi(rev, &err))
		default:
			return v, fmt.Errorf("unknown view line %q", line)
		}
		if err != nil {
			return v, fmt.Errorf("%q: %w", line, err)
		}
	}
	if v.me == "" {
		return v, fmt.Errorf("no me line")
	}
	return v, nil
}

// splitArgs separates positional arguments from key=value ones.
func splitArgs(f []string) ([]string, map[string]string) {
	var args []string
	kv := map[string]string{}
	for _, s := range f {
		if k, val, ok := strings.Cut(s, "="); ok {
			kv[k] = val
		} else {
			args = append(args, s)
		}
	}
	return args, kv
}

func hasArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}

// atoi parses s ("" is 0) and keeps the first error in *err.
func atoi(s string, err *error) int64 {
	if s == "" {
		return 0
	}
	n, e := strconv.ParseInt(s, 10, 64)
	if e != nil && *err == nil {
		*err = e
	}
	return n
}

// duration parses s ("" is 0) and keeps the first error in *err.
func duration(s string, err *error) time.Duration {
	if s == "" {
		return 0
	}
	d, e := time.ParseDuration(s)
	if e != nil && *err == nil {
		*err = e
	}
	return d
}

// gen renders a generation as epoch:revision.
func gen(g uint64) string { return fmt.Sprintf("%d:%d", g>>32, g&0xffffffff) }

// renderActions lists a's actions in the order the loop carries them out.
func renderActions(a actions) string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if a.dropLease != "" {
		add("drop lease: %s", a.dropLease)
	}
	for _, d := range a.demotions {
		add("demote %s: %s", d.dpid, d.reason)
	}
	for _, h := range a.holds {
		add("hold %s generation %s", h.dpid, gen(h.generation))
	}
	if len(a.publish) > 0 {
		add("publish %s", joinDPIDs(a.publish))
	}
	if len(a.unpublish) > 0 {
		add("unpublish %s", joinDPIDs(a.unpublish))
	}
	for _, r := range a.releases {
		add("release %s if mod=%d (assignee %q)", r.dpid, r.modRev, r.assignee)
	}
	for _, c := range a.claims {
		if c.checkDocument {
			add("claim %s if free and document<=%d", c.dpid, c.policyRevision)
		} else {
			add("claim %s if free (policy rejected: document not compared)", c.dpid)
		}
	}
	for _, d := range a.deferred {
		add("defer %s: snapshot %d older than document %d", d.dpid, d.policyRevision, d.documentRevision)
	}
	for _, dpid := range a.handovers {
		add("handover %s", dpid)
	}
	if a.enforce {
		add("enforce")
	} else {
		add("leave switches alone")
	}
	if len(a.forget) > 0 {
		add("forget %s", joinDPIDs(a.forget))
	}
	for _, s := range a.statuses {
		if s.orphan {
			add("status %s orphan", s.dpid)
		} else {
			add("status %s", s.dpid)
		}
	}
	return strings.Join(out, "\n")
}

func joinDPIDs(dpids []topology.DPID) string {
	s := make([]string, len(dpids))
	for i, d := range dpids {
		s[i] = string(d)
	}
	return strings.Join(s, " ")
}
