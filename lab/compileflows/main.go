// Command compileflows prints the flows op25b would install on one bridge,
// in ovs-ofctl add-flows syntax, for the lab's static mode: the lab loads
// them with `ovs-ofctl -O OpenFlow13 --bundle replace-flows` so the topology,
// the SMTP servers and the reachability matrix can be exercised without a
// running op25bd. It is the pure core (topology.Validate, flows.Compile) and
// nothing else, so the lab's static mode checks exactly what the controller
// would push.
//
//	go run ./lab/compileflows -doc lab/policy.json -dpid 0000000000000a01 > flows.txt
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
)

func main() {
	docPath := flag.String("doc", "", "policy document (JSON or YAML)")
	dpid := flag.String("dpid", "", "datapath id of the bridge, 16 hex digits")
	at := flag.String("at", "", "RFC 3339 instant to evaluate phases at (default: now)")
	flag.Parse()
	if err := run(*docPath, *dpid, *at); err != nil {
		fmt.Fprintln(os.Stderr, "compileflows:", err)
		os.Exit(1)
	}
}

func run(docPath, dpid, atText string) error {
	if docPath == "" || dpid == "" {
		return fmt.Errorf("-doc and -dpid are required")
	}
	bridge, err := topology.ParseDPID(dpid)
	if err != nil {
		return fmt.Errorf("-dpid: %w", err)
	}
	at := time.Now()
	if atText != "" {
		t, err := topology.ParseTime(atText)
		if err != nil {
			return fmt.Errorf("-at: %w", err)
		}
		at = t
	}
	data, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	doc, err := topology.Parse(data)
	if err != nil {
		return fmt.Errorf("parse %s: %w", docPath, err)
	}
	if err := topology.Validate(doc); err != nil {
		return fmt.Errorf("validate %s: %w", docPath, err)
	}
	compiled, err := flows.Compile(doc, bridge, at, flows.DefaultOptions())
	if err != nil {
		return fmt.Errorf("compile for %s: %w", dpid, err)
	}
	_, err = fmt.Print(flows.RenderSet(compiled.Flows))
	return err
}
