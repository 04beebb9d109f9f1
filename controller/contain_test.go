package controller

import (
	"sync/atomic"
	"testing"

	"github.com/op25b/op25b/controller/ofwire"
)

// TestPanicInSessionIsContained: a bug that panics while handling one switch
// (here the Events callback panics on that switch's first connection) ends
// that session only. The daemon survives, the bridge is reported
// disconnected, another switch is unaffected, and the switch that
// reconnects is served normally.
func TestPanicInSessionIsContained(t *testing.T) {
	const victim, bystander = 0xbad, 0x600d
	var panicked atomic.Bool
	ev := &eventLog{}
	rc := startController(t, Config{Events: func(e Event) {
		if e.Kind == EventConnected && e.DPID == dpidString(victim) && panicked.CompareAndSwap(false, true) {
			panic("injected bug")
		}
		ev.add(e)
	}})
	connectFake(t, rc, bystander, nil)

	first := dialFake(t, rc.addr, victim, ofwire.Version13)
	go first.serve()
	waitClosed(t, first)
	if !panicked.Load() {
		t.Fatal("the injected panic did not happen")
	}
	waitFor(t, "victim reported disconnected", func() bool { return !rc.status(dpidString(victim)).Connected })

	connectFake(t, rc, victim, nil)
	rc.SetDesired(Desired{DPID: dpidString(victim), Revision: 1, Flows: pipelineFlows(), Master: true, Generation: 1})
	rc.waitApplied(t, dpidString(victim), 1)
	if !rc.status(dpidString(bystander)).Connected {
		t.Fatal("the other switch lost its session")
	}
}
