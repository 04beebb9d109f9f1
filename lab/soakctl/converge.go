package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/op25b/op25b/client"
	"github.com/op25b/op25b/lab/soak"
	"github.com/op25b/op25b/topology"
)

// runConverge waits until every bridge is connected, at the stored
// revision, with the flows installed on the switch equal to the desired
// ones (GET /v1/bridges/{dpid}/flows: missing and extra empty), and
// records when.
func runConverge(args []string) error {
	fs := flag.NewFlagSet("converge", flag.ContinueOnError)
	var a apiFlags
	a.register(fs)
	dpids := fs.String("bridges", "", "comma-separated dpids")
	lastFault := fs.String("last-fault-end", "", "RFC 3339 instant the last fault was undone")
	timeout := fs.Duration("timeout", 90*time.Second, "give up after")
	out := fs.String("out", "", "convergence JSON file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cs, err := a.clients()
	if err != nil {
		return err
	}
	lf, err := time.Parse(time.RFC3339Nano, *lastFault)
	if err != nil {
		return fmt.Errorf("-last-fault-end: %w", err)
	}
	var want []topology.DPID
	for _, s := range strings.Split(*dpids, ",") {
		d, err := topology.ParseDPID(s)
		if err != nil {
			return err
		}
		want = append(want, d)
	}
	res := soak.Convergence{LastFaultEnd: lf}
	deadline := time.Now().Add(*timeout)
	for i := 0; time.Now().Before(deadline); i++ {
		c := cs[i%len(cs)]
		ok, detail := converged(c, want, &res)
		if ok {
			res.Converged = time.Now()
			res.Detail = ""
			break
		}
		res.Detail = detail
		time.Sleep(500 * time.Millisecond)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return err
	}
	if res.Converged.IsZero() {
		fmt.Fprintf(os.Stderr, "soakctl converge: not converged after %v: %s\n", *timeout, res.Detail)
	} else {
		fmt.Fprintf(os.Stderr, "soakctl converge: converged at revision %d, %v after the last fault\n",
			res.Revision, res.Converged.Sub(lf).Round(time.Millisecond))
	}
	return nil
}

func converged(cl *client.Client, want []topology.DPID, res *soak.Convergence) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := cl.Config(ctx)
	if err != nil {
		return false, "config: " + err.Error()
	}
	res.Revision, res.Hash, res.Doc = cfg.Revision, soak.DocHash(cfg.Document), soak.Normalize(cfg.Document)
	st, err := cl.Status(ctx)
	if err != nil {
		return false, "status: " + err.Error()
	}
	var problems []string
	for _, d := range want {
		var found bool
		for _, b := range st.Bridges {
			if b.DPID != d {
				continue
			}
			found = true
			if !b.Connected || b.AppliedRevision < cfg.Revision {
				problems = append(problems, fmt.Sprintf("%s connected=%v applied_revision=%d master=%q last_error=%q",
					d, b.Connected, b.AppliedRevision, b.Master, b.LastError))
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("%s not in status", d))
			continue
		}
		fl, err := cl.Flows(ctx, d)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s flows: %v", d, err))
		case fl.InstalledError != "":
			problems = append(problems, fmt.Sprintf("%s flows: %s", d, fl.InstalledError))
		case len(fl.Missing)+len(fl.Extra) > 0:
			problems = append(problems, fmt.Sprintf("%s: %d flows missing, %d extra", d, len(fl.Missing), len(fl.Extra)))
		}
	}
	return len(problems) == 0, strings.Join(problems, "; ")
}

// runCheck loads what a soak left in -dir and runs the checker.
func runCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	dir := fs.String("dir", "", "the soak's record directory")
	seed := fs.Int64("seed", 0, "the soak's seed")
	duration := fs.Duration("duration", 0, "the soak's duration")
	started := fs.String("started", "", "RFC 3339 instant the soak started")
	all := fs.Bool("all", false, "print the timeline of every violation, not only the first ten")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h := &soak.History{Seed: *seed, Duration: *duration}
	if *started != "" {
		t, err := time.Parse(time.RFC3339Nano, *started)
		if err != nil {
			return err
		}
		h.Started = t
	}
	var err error
	if b, rerr := os.ReadFile(filepath.Join(*dir, "baseline")); rerr == nil {
		h.Baseline, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if h.Faults, err = readJSONLines[soak.FaultEvent](filepath.Join(*dir, "faults.jsonl")); err != nil {
		return err
	}
	if h.Writes, err = readJSONLines[soak.Write](filepath.Join(*dir, "writes.jsonl")); err != nil {
		return err
	}
	revs, err := readJSONLines[soak.Revision](filepath.Join(*dir, "revisions.jsonl"))
	if err != nil {
		return err
	}
	h.Revisions = dedupRevisions(revs)
	probes, _ := filepath.Glob(filepath.Join(*dir, "probes-*.jsonl"))
	for _, p := range probes {
		ps, err := readJSONLines[soak.Probe](p)
		if err != nil {
			return err
		}
		h.Probes = append(h.Probes, ps...)
	}
	b, err := os.ReadFile(filepath.Join(*dir, "converge.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &h.Convergence); err != nil {
		return err
	}
	logs, _ := filepath.Glob(filepath.Join(*dir, "op25bd-*.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			return err
		}
		h.LogFindings = append(h.LogFindings, soak.ScanLog(filepath.Base(l), string(data))...)
	}
	r := soak.Check(h, soak.DefaultWindows)
	if *all {
		r.PrintN(os.Stdout, -1)
	} else {
		r.Print(os.Stdout)
	}
	if !r.OK() {
		return errViolations
	}
	return nil
}

var errViolations = errors.New("violations found")

// dedupRevisions keeps one record per revision (the historian of the
// writer and the final pass may both record one), in revision order.
func dedupRevisions(in []soak.Revision) []soak.Revision {
	seen := map[int64]bool{}
	var out []soak.Revision
	for _, r := range in {
		if !seen[r.Revision] {
			seen[r.Revision] = true
			out = append(out, r)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Revision < out[j-1].Revision; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
