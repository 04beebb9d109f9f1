package archtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/op25b/op25b"

// Groups of packages that rules forbid. A pattern ending in "/..." is the
// package and everything below it; a pattern without a dot in its first
// element is one of ours (relative to the module) or the standard library.
var (
	etcdServer = []string{"go.etcd.io/etcd/server/...", "go.etcd.io/raft/...", "go.etcd.io/bbolt/..."}
	etcdAny    = []string{"go.etcd.io/..."}
	openflow   = []string{"github.com/netrack/openflow/..."}
	serving    = []string{"github.com/prometheus/...", "github.com/gorilla/mux"}
	grpc       = []string{"google.golang.org/grpc/..."} // comes with the etcd client
	// ioStd: a pure package computes; it does not dial, listen, run
	// programs or log.
	ioStd = []string{"net", "net/http", "os/exec", "log/slog"}
)

func join(lists ...[]string) []string { return slices.Concat(lists...) }

// rules is the import rules of every package of the module, as the
// package READMEs state them: the packages of ours it may import directly
// (data flows one way: topology → flows → controller → api → cmd), and
// what it must not link at all, directly or through anything else. A
// package without a row fails the test: a new package starts by saying
// where it stands.
var rules = []struct {
	pkg      string
	mayUse   []string // our packages it may import directly
	mustNot  []string // linked by no path
	mustLink []string // what it is for
	why      string
}{
	{pkg: "topology", mayUse: []string{"internal/textdist"}, mustNot: join(ioStd, etcdAny, openflow, serving, grpc),
		why: "the policy document is pure: no I/O, no clock"},
	{pkg: "flows", mayUse: []string{"topology"}, mustNot: join(ioStd, etcdAny, openflow, serving, grpc),
		why: "the compiler is pure: a document, a bridge and a time in, flows out"},
	{pkg: "offenders", mayUse: []string{"flows"}, mustNot: join(ioStd, etcdAny, openflow, serving, grpc),
		why: "offender accounting is pure: reads of a switch's counters and a time in, attempts out"},
	{pkg: "controller/ofwire", mayUse: []string{"flows"}, mustNot: join([]string{"log/slog"}, etcdAny, serving),
		why: "the codec is a leaf below the controller: bytes in, bytes out"},
	{pkg: "controller/ofwire/ofwiretest", mayUse: []string{"controller/ofwire", "flows"}, mustNot: join(etcdAny, serving),
		why: "test support: netrack's encoder as a second source"},
	{pkg: "controller", mayUse: []string{"controller/ofwire", "flows", "offenders", "topology"}, mustNot: join(etcdAny, serving),
		why: "OpenFlow sessions know nothing about etcd or HTTP"},
	{pkg: "controller/cluster", mayUse: []string{"controller", "flows", "topology", "topology/store"}, mustNot: join(etcdServer, serving),
		why: "mastership is an etcd client under the controller, below the API"},
	{pkg: "topology/store", mayUse: []string{"topology"}, mustNot: join(etcdServer, openflow, serving),
		why: "the document in etcd is an etcd client; the embedded server is internal/etcdembed"},
	{pkg: "api/apitypes", mayUse: []string{"topology"}, mustNot: join(ioStd, etcdAny, openflow, serving, grpc),
		why: "the API's bodies, shared with clients: data only"},
	{pkg: "client", mayUse: []string{"api/apitypes", "topology"}, mustNot: join(etcdAny, openflow, serving, grpc),
		why: "a client links no server code"},
	{pkg: "api", mayUse: []string{"api/apitypes", "api/ui", "controller", "flows", "internal/buildinfo", "internal/connlimit", "offenders", "topology", "topology/store"},
		mustNot: join(etcdServer), why: "the REST API exposes; it starts no etcd and no switch session"},
	{pkg: "api/ui", mustNot: join(etcdAny, openflow, serving, grpc),
		why: "the rollout page: embedded static assets, all data through the REST API in the browser"},
	{pkg: "cmd/op25bctl", mayUse: []string{"api/apitypes", "client", "internal/buildinfo", "internal/clidoc", "internal/ovsattach", "topology"},
		mustNot: join(etcdAny, openflow, serving, grpc), mustLink: []string{"client"},
		why: "the CLI is a client (it was 25 MB through package api)"},
	{pkg: "cmd/op25bd", mayUse: []string{"api", "controller", "controller/cluster", "flows", "internal/buildinfo", "internal/clidoc",
		"internal/connlimit", "internal/etcdembed", "internal/textdist", "internal/tlsconfig", "offenders", "topology", "topology/store"},
		why: "the daemon wires everything but test support"},
	{pkg: "internal/etcdembed", mayUse: []string{"internal/freeport"}, mustNot: openflow,
		why: "the one package that links the etcd server"},
	{pkg: "internal/testenv", mayUse: []string{"internal/etcdembed", "internal/freeport", "topology"},
		why: "test support: real OVS and etcd for tests"},
	{pkg: "internal/fakeswitch", mayUse: []string{"controller/ofwire", "flows", "topology"}, mustNot: join(etcdAny, serving),
		why: "test support: simulated OpenFlow 1.3 switches, a thousand per process"},
	{pkg: "internal/buildinfo", mustNot: join(etcdAny, serving), why: "a leaf"},
	{pkg: "internal/clidoc", mustNot: join(etcdAny, serving), why: "a leaf"},
	{pkg: "internal/connlimit", mustNot: join(etcdAny, serving), why: "a leaf"},
	{pkg: "internal/freeport", mustNot: join(etcdAny, serving), why: "a leaf"},
	{pkg: "internal/ovsattach", mustNot: join(etcdAny, serving), why: "a leaf"},
	{pkg: "internal/textdist", mustNot: join(ioStd, etcdAny, openflow, serving, grpc), why: "a pure leaf: the edit distance behind \"did you mean\" hints"},
	{pkg: "internal/tlsconfig", mustNot: join(etcdAny, serving), why: "a leaf"},
	{pkg: "internal/synstorm", mustNot: join(etcdAny, openflow, serving, grpc),
		why: "a load generator (raw SYNs) for the offender benchmark: a leaf"},
	{pkg: "internal/synstorm/synstorm", mayUse: []string{"internal/synstorm"}, mustNot: join(etcdAny, openflow, serving, grpc),
		why: "the generator's command, run in a namespace by the benchmark"},
	{pkg: "internal/archtest", why: "tests only"},
	{pkg: "internal/repocheck", why: "tests only"},
	{pkg: "packaging/deb", why: "tests only"},
	{pkg: "contrib", why: "tests only: the dashboards and rules against a real cluster, Prometheus and Chromium"},
	{pkg: "contrib/prometheus", why: "tests only: promtool on the alert rules"},
	{pkg: "lab", why: "the Mininet lab; its tests use flows and topology"},
	{pkg: "lab/compileflows", mayUse: []string{"flows", "topology"}, mustNot: join(etcdAny, serving),
		why: "compiles a document for the lab"},
	{pkg: "lab/soak", mayUse: []string{"flows", "topology"}, mustNot: join(ioStd, etcdAny, openflow, serving, grpc),
		why: "the chaos soak's plan and checker are pure: a seed or a history in, a verdict out"},
	{pkg: "lab/soakctl", mayUse: []string{"client", "lab/soak", "topology"}, mustNot: join(etcdAny, openflow, serving, grpc),
		why: "the soak's writer, prober, proxy and checker command: a REST client, never the daemon's packages"},
}

type goPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// packages returns every package of the module with what it imports and
// links, from one `go list` run (tests are not part of either).
func packages(t *testing.T) map[string]goPackage {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-json=ImportPath,Imports,Deps", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]goPackage{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[ours(p.ImportPath)] = p
	}
	return pkgs
}

// ours turns one of our import paths into its path in the module ("" for
// the module root); others are returned unchanged.
func ours(path string) string {
	if path == module {
		return ""
	}
	if rel, ok := strings.CutPrefix(path, module+"/"); ok {
		return rel
	}
	return path
}

func isOurs(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

func matches(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// TestImportRules checks every package of the module against its row.
func TestImportRules(t *testing.T) {
	for _, problem := range check(packages(t)) {
		t.Error(problem)
	}
}

// TestImportRulesCatchViolations: the checker itself, on a made-up graph
// with one violation of each kind.
func TestImportRulesCatchViolations(t *testing.T) {
	pkgs := map[string]goPackage{}
	for _, r := range rules {
		pkgs[r.pkg] = goPackage{ImportPath: module + "/" + r.pkg}
		for _, want := range r.mustLink {
			pkgs[r.pkg] = goPackage{ImportPath: module + "/" + r.pkg, Deps: []string{module + "/" + want}}
		}
	}
	pkgs["flows"] = goPackage{Imports: []string{module + "/api"}, Deps: []string{"net/http"}}
	pkgs["topology/store"] = goPackage{Deps: []string{"go.etcd.io/raft/v3"}}
	pkgs["cmd/op25bctl"] = goPackage{}
	pkgs["newpkg"] = goPackage{}
	got := strings.Join(check(pkgs), "\n")
	for _, want := range []string{"flows imports api", "flows links net/http", "topology/store links go.etcd.io/raft/v3",
		"cmd/op25bctl does not link client", "package newpkg has no import rule"} {
		if !strings.Contains(got, want) {
			t.Errorf("no problem %q reported; got:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 5 {
		t.Errorf("%d problems, want 5:\n%s", n, got)
	}
}

func check(pkgs map[string]goPackage) []string {
	var problems []string
	seen := map[string]bool{}
	for _, r := range rules {
		seen[r.pkg] = true
		p, ok := pkgs[r.pkg]
		if !ok {
			problems = append(problems, "rule for "+r.pkg+": no such package")
			continue
		}
		for _, imp := range p.Imports {
			if isOurs(imp) && !slices.Contains(r.mayUse, ours(imp)) {
				problems = append(problems, fmt.Sprintf("%s imports %s, which its README does not allow (%s)", r.pkg, ours(imp), r.why))
			}
		}
		for _, dep := range p.Deps {
			for _, f := range r.mustNot {
				if matches(f, ours(dep)) {
					problems = append(problems, fmt.Sprintf("%s links %s (%s)", r.pkg, dep, r.why))
				}
			}
		}
		for _, want := range r.mustLink {
			if !slices.Contains(p.Deps, module+"/"+want) {
				problems = append(problems, fmt.Sprintf("%s does not link %s (%s)", r.pkg, want, r.why))
			}
		}
	}
	var extra []string
	for pkg := range pkgs {
		if !seen[pkg] {
			extra = append(extra, "package "+pkg+" has no import rule: add its row to rules (and say it in its README)")
		}
	}
	slices.Sort(extra)
	return append(problems, extra...)
}
