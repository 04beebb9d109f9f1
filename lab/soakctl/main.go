// Command soakctl is the I/O half of the lab's chaos soak (lab/soak.py):
// it prints the seeded fault plan, writes random valid changes through the
// REST API and records every answer, probes TCP ports from inside a lab
// host, proxies (and partitions) the soak's TCP paths, waits for the
// bridges to converge, and runs the checker of package lab/soak over what
// the run left behind.
//
//	soakctl plan -seed 42 -duration 3m
//	soakctl write -servers https://127.0.0.1:P0,... -out DIR ...
//	soakctl probe -host dyn1 -src4 10.1.0.10 -targets relay=192.0.2.25:25,... -out FILE
//	soakctl proxy -paths r0-m0=127.0.0.1:A>127.0.0.1:B,... -control 127.0.0.1:C
//	soakctl converge -servers ... -last-fault-end T -out FILE
//	soakctl check -dir DIR
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: soakctl plan|write|history|probe|proxy|converge|check [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"plan": runPlan, "write": runWrite, "history": runHistory, "probe": runProbe,
		"proxy": runProxy, "converge": runConverge, "check": runCheck,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "soakctl: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "soakctl %s: %v\n", os.Args[1], err)
		if err == errViolations {
			os.Exit(1)
		}
		os.Exit(2)
	}
}
