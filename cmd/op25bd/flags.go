package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/controller/cluster"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/textdist"
	"github.com/op25b/op25b/internal/tlsconfig"
	"github.com/op25b/op25b/offenders"
)

// options are op25bd's settings (docs/operations.md).
type options struct {
	OpenFlowListen string
	APIListen      string
	MetricsListen  string   // empty: /metrics only on the API listener
	EtcdEndpoints  []string // empty: embedded single-node etcd in DataDir
	DataDir        string
	NodeID         string
	APITokenFile   string
	LogLevel       slog.Level
	LogFormat      string        // "text" or "json"
	AuditInterval  time.Duration // full audits of bridges whose switch refuses flow monitoring
	AuditSweep     time.Duration // full audits of bridges watched through flow monitoring
	LeaseTTL       time.Duration
	// Pipeline places op25b's five tables (--first-table), says what
	// "forward" means (--continue), so op25b can sit in front of an
	// existing pipeline, and bounds the offender table
	// (--offenders-max-flows). Every replica must use the same values.
	Pipeline flows.Options
	// Offenders bounds what this replica remembers of the sources its
	// bridges' offender tables count (GET /v1/offenders).
	Offenders offenders.Config

	// TLS of each channel (issue 7). Empty: plain TCP.
	OpenFlowTLS tlsconfig.Files // Cert, Key and CA all required: mutual TLS
	APITLS      tlsconfig.Files // CA optional: client certificates in addition to tokens
	EtcdTLS     tlsconfig.Files // client side; the embedded etcd serves with them

	// Abuse resistance on the OpenFlow and API ports.
	HandshakeTimeout time.Duration
	OpenFlowMaxConns int
	APIMaxConns      int
	Limits           limitOptions // per-client caps, reserve, body deadline (limit.go)
}

// rawFlags are the flag values parseFlags converts and checks before they
// become options.
type rawFlags struct {
	logLevel, logFormat string
	etcd                string
	firstTable          uint
	continueTo          string
	offenderFlows       uint
	version             bool
}

// errVersion is parseFlags' answer to --version: the caller prints the
// build information and exits 0.
var errVersion = errors.New("version requested")

// envName is the environment variable that also sets a flag:
// --audit-interval → OP25B_AUDIT_INTERVAL.
func envName(flagName string) string {
	return "OP25B_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// usageHeader opens --help; the man page says the same at more length.
const usageHeader = `Usage: op25bd [flags]

op25bd is the op25b OpenFlow controller (Outbound Port 25 Blocking on Open vSwitch).
Every flag can also be set with an OP25B_<FLAG> environment variable, dashes as
underscores (e.g. OP25B_ETCD_ENDPOINTS); a flag on the command line wins.
SIGTERM or SIGINT stops it (mastership moves to another replica at once, flows
stay on the switches); SIGHUP re-reads the token file and the certificates.

Flags:
`

// newFlagSet defines every op25bd flag on a new FlagSet bound to o and raw.
// It is the one definition that parsing, --help, the man page and the bash
// completion read.
func newFlagSet(o *options, raw *rawFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("op25bd", flag.ContinueOnError)
	// Parse errors are returned as one line; only --help prints usage.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.OpenFlowListen, "openflow-listen", ":6653", "`address` where switches connect (OpenFlow 1.3 over TCP); one replica's target in each bridge's controller list")
	fs.StringVar(&o.APIListen, "api-listen", "127.0.0.1:8080", "`address` of the REST API; without --api-token-file only loopback is served")
	fs.StringVar(&o.MetricsListen, "metrics-listen", "", "`address` of a second, plain-HTTP listener serving only /metrics, /healthz and /readyz, without token or client certificate (for Prometheus and load balancers). Empty: none")
	fs.StringVar(&raw.etcd, "etcd-endpoints", "", "comma-separated etcd client `URLs`; empty starts an embedded single-node etcd in --data-dir. Replicas sharing endpoints form one cluster")
	fs.StringVar(&o.DataDir, "data-dir", "./op25b-data", "`directory` of the embedded etcd (unused with --etcd-endpoints)")
	fs.StringVar(&o.NodeID, "node-id", "", "this replica's `id`, unique in the cluster (shown as master in status); empty: the host name")
	fs.StringVar(&o.APITokenFile, "api-token-file", "", "`file` of API tokens, lines \"NAME TOKEN ROLE\" (ROLE read or write); re-read on SIGHUP. Empty: no authentication")
	fs.StringVar(&raw.logLevel, "log-level", "info", "`level` of the structured logs: debug, info, warn or error")
	fs.StringVar(&raw.logFormat, "log-format", "text", "`format` of the logs on stderr: text (key=value) or json (one object per line)")
	fs.DurationVar(&o.AuditInterval, "audit-interval", 30*time.Second, "how often each master compares the flows installed on a bridge whose switch refuses flow monitoring with the desired ones and repairs drift (a full dump), and how soon a failed reconcile is retried; a Go `duration`")
	fs.DurationVar(&o.AuditSweep, "audit-sweep", controller.DefaultAuditSweep, "how often each master does a full audit of a bridge whose flow-table changes it watches (flow monitoring repairs drift as the switch reports it; the sweep is a safety net); a Go `duration`")
	fs.UintVar(&raw.firstTable, "first-table", 0, fmt.Sprintf("OpenFlow `table` of op25b's classifier, 0..%d; op25b uses this table and the next four. Same on every replica", flows.MaxFirstTable))
	fs.StringVar(&raw.continueTo, "continue", "normal", "what forwarding a packet means: `normal` (output NORMAL) or goto:N (an existing pipeline's table N, after op25b's tables). Same on every replica")
	fs.DurationVar(&o.LeaseTTL, "lease-ttl", cluster.DefaultLeaseTTL, "etcd lease `duration` of this replica: a crashed replica's bridges move to others within about this long plus half a second (2s is etcd's minimum with its default election timeout; an etcd leader election does not move them)")
	fs.StringVar(&o.OpenFlowTLS.Cert, "openflow-tls-cert", "", "PEM `file` of the controller's certificate for OpenFlow over TLS (switch targets ssl:HOST:PORT); with --openflow-tls-key and --openflow-tls-ca. Plain TCP is then refused. Re-read on SIGHUP")
	fs.StringVar(&o.OpenFlowTLS.Key, "openflow-tls-key", "", "PEM `file` of the private key of --openflow-tls-cert (mode 0600 or stricter)")
	fs.StringVar(&o.OpenFlowTLS.CA, "openflow-tls-ca", "", "PEM `file` of the CA certificate(s) that sign the switches' certificates (ovs-vsctl set-ssl); a switch without one is refused")
	fs.StringVar(&o.APITLS.Cert, "api-tls-cert", "", "PEM `file` of the REST API's certificate (HTTPS); with --api-tls-key. Re-read on SIGHUP")
	fs.StringVar(&o.APITLS.Key, "api-tls-key", "", "PEM `file` of the private key of --api-tls-cert (mode 0600 or stricter)")
	fs.StringVar(&o.APITLS.CA, "api-tls-client-ca", "", "PEM `file` of the CA that signs API client certificates; when set every client must present one, in addition to its bearer token")
	fs.StringVar(&o.EtcdTLS.Cert, "etcd-cert", "", "PEM `file` of op25bd's client certificate for etcd (https:// endpoints); the embedded etcd serves with it. Re-read on SIGHUP")
	fs.StringVar(&o.EtcdTLS.Key, "etcd-key", "", "PEM `file` of the private key of --etcd-cert (mode 0600 or stricter)")
	fs.StringVar(&o.EtcdTLS.CA, "etcd-ca", "", "PEM `file` of the CA that signs the etcd servers' certificates (and, embedded, the clients')")
	fs.DurationVar(&o.HandshakeTimeout, "handshake-timeout", 10*time.Second, "a new connection must finish its TLS handshake and OpenFlow HELLO/FEATURES (switches) or send its request headers (API) within this `duration`, else it is closed")
	fs.IntVar(&o.OpenFlowMaxConns, "openflow-max-connections", controller.DefaultMaxConnections, "`n` OpenFlow connections served at once (handshaking or established); more wait in the listen backlog")
	fs.IntVar(&o.APIMaxConns, "api-max-connections", 256, "`n` API connections served at once; more wait in the listen backlog")
	fs.IntVar(&o.Offenders.MaxSources, "offenders-max-sources", offenders.DefaultMaxSources, "`n` sources this replica remembers for GET /v1/offenders (about 1 KB each); beyond, the least recently active is forgotten and answers say truncated")
	fs.DurationVar(&o.Offenders.Retention, "offenders-retention", offenders.DefaultRetention, fmt.Sprintf("how long a source is remembered after its last attempt, 1m..%s; the longest window GET /v1/offenders answers", offenders.MaxRetention))
	fs.UintVar(&raw.offenderFlows, "offenders-max-flows", flows.DefaultOffenderFlows, "`n` (source, destination) counting flows each switch may learn in op25b's offender table (the learn limit); beyond, attempts are counted in total only. Same on every replica")
	limitFlags(fs, &o.Limits)
	fs.BoolVar(&raw.version, "version", false, "print the version, commit and Go version, then exit")
	return fs
}

// parseFlags reads args, then fills every flag not given on the command
// line from its OP25B_* variable (command line > environment > default).
// It returns flag.ErrHelp after writing the usage to output for --help,
// errVersion for --version, and a one-line error for bad values (naming
// the variable when the value came from one); the caller exits 0, 0 and 2.
func parseFlags(args []string, getenv func(string) string, output io.Writer) (options, error) {
	var (
		o   options
		raw rawFlags
	)
	fs := newFlagSet(&o, &raw)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(output, usageHeader)
			fs.SetOutput(output)
			fs.PrintDefaults()
		}
		return o, err
	}
	if raw.version {
		return o, errVersion
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (op25bd takes flags only; see --help)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fromEnv := map[string]string{} // flag name → variable that set it
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if given[f.Name] || v == "" || envErr != nil || f.Name == "version" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("%s=%q: invalid value for --%s: %v", envName(f.Name), v, f.Name, err)
		}
		fromEnv[f.Name] = envName(f.Name)
	})
	if envErr != nil {
		return o, envErr
	}
	// ref names a setting in an error as the operator wrote it: the
	// variable in /etc/default/op25bd, or the flag.
	ref := func(name string) string {
		if v, ok := fromEnv[name]; ok {
			return v + " (--" + name + ")"
		}
		return "--" + name
	}

	if err := o.LogLevel.UnmarshalText([]byte(raw.logLevel)); err != nil {
		return o, fmt.Errorf("%s %q: want debug, info, warn or error", ref("log-level"), raw.logLevel)
	}
	switch raw.logFormat {
	case "text", "json":
		o.LogFormat = raw.logFormat
	default:
		return o, fmt.Errorf("%s %q: want text or json", ref("log-format"), raw.logFormat)
	}
	for _, e := range strings.Split(raw.etcd, ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.EtcdEndpoints = append(o.EtcdEndpoints, e)
		}
	}
	for _, l := range []struct{ name, addr string }{{"openflow-listen", o.OpenFlowListen}, {"api-listen", o.APIListen}, {"metrics-listen", o.MetricsListen}} {
		if l.addr == "" && l.name == "metrics-listen" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			return o, fmt.Errorf("%s %q: want host:port (e.g. :6653 or 127.0.0.1:8080): %v", ref(l.name), l.addr, err)
		}
	}
	if o.NodeID == "" {
		o.NodeID, _ = os.Hostname()
	}
	switch {
	case o.NodeID == "":
		return o, errors.New("--node-id is empty and the hostname is unknown")
	case strings.ContainsAny(o.NodeID, "/ \t"):
		return o, fmt.Errorf("%s %q: must not contain '/' or spaces", ref("node-id"), o.NodeID)
	case o.AuditInterval <= 0:
		return o, fmt.Errorf("%s %s: must be positive", ref("audit-interval"), o.AuditInterval)
	case o.AuditSweep <= 0:
		return o, fmt.Errorf("%s %s: must be positive", ref("audit-sweep"), o.AuditSweep)
	case o.LeaseTTL < time.Second:
		return o, fmt.Errorf("%s %s: must be at least 1s (etcd leases count whole seconds)", ref("lease-ttl"), o.LeaseTTL)
	case len(o.EtcdEndpoints) == 0 && o.DataDir == "":
		return o, errors.New("--data-dir is empty and no --etcd-endpoints: nowhere to keep the embedded etcd")
	case o.HandshakeTimeout <= 0:
		return o, fmt.Errorf("%s %s: must be positive", ref("handshake-timeout"), o.HandshakeTimeout)
	case o.OpenFlowMaxConns < 1:
		return o, fmt.Errorf("%s %d: must be at least 1", ref("openflow-max-connections"), o.OpenFlowMaxConns)
	case o.APIMaxConns < 1:
		return o, fmt.Errorf("%s %d: must be at least 1", ref("api-max-connections"), o.APIMaxConns)
	}
	if err := o.Limits.check(); err != nil {
		return o, err
	}
	pipeline, err := parsePipeline(raw.firstTable, raw.continueTo)
	if err != nil {
		return o, err
	}
	if raw.offenderFlows < 1 || raw.offenderFlows > 10_000_000 {
		return o, fmt.Errorf("%s %d: must be 1..10000000", ref("offenders-max-flows"), raw.offenderFlows)
	}
	pipeline.OffenderFlows = uint32(raw.offenderFlows)
	o.Pipeline = pipeline
	if o.Offenders.MaxSources < 1 {
		return o, fmt.Errorf("%s %d: must be at least 1", ref("offenders-max-sources"), o.Offenders.MaxSources)
	}
	if err := o.Offenders.Validate(); err != nil {
		return o, fmt.Errorf("%s: %w", ref("offenders-retention"), err)
	}
	return o, checkTLSFlags(o)
}

// clientVariables are op25bctl's variables; an operator's shell exports
// them next to op25bd's, so they are not typos.
var clientVariables = map[string]bool{
	"OP25B_SERVER": true, "OP25B_TOKEN": true, "OP25B_CA": true, "OP25B_CERT": true, "OP25B_KEY": true,
}

// strayVariable is an OP25B_* variable that sets no flag: a typo in
// /etc/default/op25bd, or a flag a newer release removed.
type strayVariable struct {
	Name    string // OP25B_AUDIT_INTERVALL
	Closest string // the flag it most resembles: audit-interval
}

// strayVariables lists the OP25B_* entries of environ ("NAME=value") that
// match no op25bd flag, each with the closest flag name.
func strayVariables(environ []string) []strayVariable {
	var names []string
	newFlagSet(&options{}, &rawFlags{}).VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	known := map[string]bool{}
	for _, n := range names {
		known[envName(n)] = n != "version" // --version is read from the command line only
	}
	var out []strayVariable
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "OP25B_") || known[name] || clientVariables[name] {
			continue
		}
		typed := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "OP25B_"), "_", "-"))
		out = append(out, strayVariable{Name: name, Closest: closestFlag(typed, names)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// closestFlag is the flag a mistyped name most likely meant: the shortest
// flag it begins (OP25B_METRICS → metrics-listen), else the one at the
// smallest edit distance.
func closestFlag(typed string, names []string) string {
	best := ""
	for _, n := range names {
		if strings.HasPrefix(n, typed) && (best == "" || len(n) < len(best)) {
			best = n
		}
	}
	if best != "" {
		return best
	}
	bestDist := -1
	for _, n := range names {
		if d := textdist.Levenshtein(typed, n); bestDist < 0 || d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// parsePipeline turns --first-table and --continue into flows.Options.
func parsePipeline(firstTable uint, continueTo string) (flows.Options, error) {
	opts := flows.DefaultOptions()
	if firstTable > flows.MaxFirstTable {
		return opts, fmt.Errorf("--first-table %d: must be 0..%d (op25b uses five consecutive tables)", firstTable, flows.MaxFirstTable)
	}
	opts.FirstTable = uint8(firstTable)
	switch {
	case continueTo == "normal":
	case strings.HasPrefix(continueTo, "goto:"):
		n, err := strconv.ParseUint(strings.TrimPrefix(continueTo, "goto:"), 10, 8)
		if err != nil {
			return opts, fmt.Errorf("--continue %q: want normal or goto:N with N a table number", continueTo)
		}
		opts.Continue = flows.Actions{Goto: true, GotoTable: uint8(n)}
	default:
		return opts, fmt.Errorf("--continue %q: want normal or goto:N", continueTo)
	}
	if err := opts.Validate(); err != nil {
		return opts, fmt.Errorf("--first-table %d --continue %s: %w", firstTable, continueTo, err)
	}
	return opts, nil
}

// checkTLSFlags refuses incomplete TLS settings: a half-configured channel
// must not silently fall back to plain TCP.
func checkTLSFlags(o options) error {
	if f := o.OpenFlowTLS; f.Set() && (f.Cert == "" || f.Key == "" || f.CA == "") {
		return errors.New("--openflow-tls-cert, --openflow-tls-key and --openflow-tls-ca go together (switches must present a certificate signed by the CA)")
	}
	if f := o.APITLS; f.Set() && (f.Cert == "" || f.Key == "") {
		return errors.New("--api-tls-cert and --api-tls-key go together (and --api-tls-client-ca needs them)")
	}
	if f := o.EtcdTLS; (f.Cert == "") != (f.Key == "") {
		return errors.New("--etcd-cert and --etcd-key go together")
	}
	if f := o.EtcdTLS; f.Set() && len(o.EtcdEndpoints) == 0 && (f.Cert == "" || f.CA == "") {
		return errors.New("the embedded etcd serves TLS with --etcd-cert, --etcd-key and --etcd-ca together (the CA signs its clients)")
	}
	for _, e := range o.EtcdEndpoints {
		if o.EtcdTLS.Set() && !strings.HasPrefix(e, "https://") {
			return fmt.Errorf("--etcd-endpoints %q: with --etcd-cert/--etcd-ca every endpoint must be https://", e)
		}
	}
	return nil
}
