package cluster

import (
	"time"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
)

// compileRetry spaces the retries of a compile that failed, without
// spinning.
const compileRetry = 5 * time.Second

// bridgeState is the loop's knowledge of one bridge.
type bridgeState struct {
	master     bool
	generation uint64

	flows       []flows.Flow
	compiledRev int64
	compiled    bool
	validUntil  time.Time // next phase boundary after the compile; zero = none
	last        *Desired  // what the controller was last told
}

// enforce compiles the desired flows of every bridge connected here or
// mastered here and hands them to the controller when anything changed;
// it forgets the bridges decide found gone. It runs with or without etcd:
// a phase boundary takes effect while etcd is away.
func (r *Replica) enforce(st *loop, doc *topology.Document, v view, forget []topology.DPID) {
	for _, dpid := range forget {
		if b := st.bridges[dpid]; b != nil && b.last != nil {
			r.cfg.Switches.Forget(dpid)
		}
		delete(st.bridges, dpid)
	}
	for dpid := range v.local {
		st.bridge(dpid)
	}
	now := r.cfg.Now()
	pc := newPopCompiler(r.cfg.Compile, doc, now)
	for dpid, b := range st.bridges {
		if v.local[dpid] || b.master {
			r.enforceBridge(dpid, b, pc, v.policy.revision)
			continue
		}
		// Neither connected nor mastered here: its next boundary is no
		// reason to wake up (once behind us, a boundary nobody recompiles
		// would arm the phase timer with 0 after every pass: a spinning
		// loop). It is compiled afresh when it is enforced here again.
		b.validUntil, b.compiled = time.Time{}, false
	}
}

// popCompiler compiles the document once per pop in a pass: a bridge's
// flows depend on the document only through its pop (flows.Compile; an
// unregistered bridge is enforced with pop ""), so a thousand bridges in
// ten pops cost ten compiles, and bridges of one pop share one flow slice
// (the controller indexes it once).
type popCompiler struct {
	compile CompileFunc
	doc     *topology.Document
	now     time.Time
	pops    map[topology.DPID]string
	done    map[string]compiled
}

type compiled struct {
	flows []flows.Flow
	err   error
}

func newPopCompiler(compile CompileFunc, doc *topology.Document, now time.Time) *popCompiler {
	pc := &popCompiler{compile: compile, doc: doc, now: now, pops: map[topology.DPID]string{}, done: map[string]compiled{}}
	if doc != nil {
		for _, b := range doc.Bridges {
			pc.pops[b.DPID] = b.Pop
		}
	}
	return pc
}

func (pc *popCompiler) flowsFor(dpid topology.DPID) ([]flows.Flow, error) {
	pop := pc.pops[dpid]
	c, ok := pc.done[pop]
	if !ok {
		c.flows, c.err = pc.compile(pc.doc, dpid, pc.now)
		pc.done[pop] = c
	}
	return c.flows, c.err
}

// enforceBridge recompiles one bridge when its snapshot or phase changed
// and tells the controller when flows or role differ from what it was told.
func (r *Replica) enforceBridge(dpid topology.DPID, b *bridgeState, pc *popCompiler, rev int64) {
	doc, now := pc.doc, pc.now
	recompiled := false
	if !b.compiled || b.compiledRev != rev || (!b.validUntil.IsZero() && !now.Before(b.validUntil)) {
		fl, err := pc.flowsFor(dpid)
		if err != nil {
			// Keep whatever the controller has; never push a partial set.
			r.log.Error("compile failed; keeping previous desired flows", "dpid", dpid, "revision", rev, "err", err)
			b.validUntil = now.Add(compileRetry)
			return
		}
		b.flows, b.compiledRev, b.compiled, recompiled = fl, rev, true, true
		b.validUntil = time.Time{}
		if next, ok := doc.NextChange(now); ok {
			b.validUntil = next
		}
	}
	if !recompiled && b.last != nil && b.last.Master == b.master && b.last.Generation == b.generation {
		return
	}
	d := Desired{DPID: dpid, Revision: rev, Flows: b.flows, Master: b.master, Generation: b.generation}
	r.cfg.Switches.SetDesired(d)
	b.last = &d
	r.log.Debug("desired state set", "dpid", dpid, "revision", rev, "flows", len(d.Flows), "master", d.Master, "generation", d.Generation)
}
