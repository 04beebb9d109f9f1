package main

import "errors"

// runOVS is contract §4's `ovs attach/detach`; it is tracked in issue 6.
func runOVS(g *globals, args []string) error {
	return errors.New("not implemented yet (issue 6): configure the bridge with ovs-vsctl: protocols=OpenFlow13, fail-mode=secure, set-controller")
}
