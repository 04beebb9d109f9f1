package soak

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Timing of a plan. Faults start after Warmup and are all undone by
// Duration-Tail, which leaves the tail for convergence (the checker wants
// every bridge converged within ConvergeWithin of the last fault) while the
// probers keep probing.
const (
	Warmup  = 15 * time.Second
	Tail    = 60 * time.Second
	MinGap  = 3 * time.Second
	MaxGap  = 12 * time.Second
	Rolling = 20 * time.Second // what the plan reserves for a rolling restart of three replicas
)

// Lab names the targets of a plan: what the soak runs on.
type Lab struct {
	Replicas    int      // op25bd replicas r0, r1, ...
	EtcdMembers int      // etcd members m0, m1, ...
	Bridges     []string // subscriber bridges
}

// DefaultLab is the soak's lab: three replicas, three etcd members, two
// subscriber bridges.
var DefaultLab = Lab{Replicas: 3, EtcdMembers: 3, Bridges: []string{"labsa", "labsb"}}

// holds is each kind's hold range; a zero range is a fault that acts once
// (the checker's windows say how long its effect may last).
var holds = map[Kind][2]time.Duration{
	KillReplica:     {3 * time.Second, 15 * time.Second},
	RollingRestart:  {0, 0},
	StopEtcdMember:  {5 * time.Second, 20 * time.Second},
	LoseEtcdQuorum:  {5 * time.Second, 15 * time.Second},
	PartitionEtcd:   {5 * time.Second, 20 * time.Second},
	PartitionSwitch: {5 * time.Second, 20 * time.Second},
	RestartVswitchd: {2 * time.Second, 8 * time.Second},
	WipeFlows:       {0, 0},
	AlterFlows:      {0, 0},
	RotateCerts:     {0, 0},
}

// group is what a fault disturbs. Two faults of one group never overlap,
// and replica faults never overlap a loss of quorum: faults overlap, but
// the plan always leaves the cluster a replica that can take over (one
// that reaches the switch, a quorum and is alive), or else no promise
// about applying a change in bounded time could hold.
func group(k Kind) string {
	switch k {
	case KillReplica, RollingRestart, PartitionEtcd, PartitionSwitch:
		return "replica"
	case StopEtcdMember, LoseEtcdQuorum:
		return "etcd"
	case RestartVswitchd:
		return "vswitchd"
	case WipeFlows, AlterFlows:
		return "flows"
	}
	return string(k)
}

// span is how long a planned fault occupies its group.
func (f Fault) span() time.Duration {
	if f.Kind == RollingRestart {
		return Rolling
	}
	return f.Hold + 2*time.Second // the injector's own stop and start
}

func conflicts(a, b Fault) bool {
	if a.Start >= b.Start+b.span() || b.Start >= a.Start+a.span() {
		return false
	}
	ga, gb := group(a.Kind), group(b.Kind)
	if ga == gb {
		return true
	}
	quorumVsReplica := func(x, y Fault) bool { return x.Kind == LoseEtcdQuorum && group(y.Kind) == "replica" }
	return quorumVsReplica(a, b) || quorumVsReplica(b, a)
}

// Plan is the fault schedule of a soak: the same seed, duration and lab
// give the same kinds, targets, start offsets and holds. Every kind comes
// once first (in a seeded order), then kinds at random; faults of
// different groups overlap.
func Plan(seed int64, duration time.Duration, lab Lab) ([]Fault, error) {
	end := duration - Tail
	if end <= Warmup+MaxGap {
		return nil, fmt.Errorf("soak duration %v too short: faults need more than %v after a warm-up of %v and before a tail of %v",
			duration, MaxGap, Warmup, Tail)
	}
	if lab.Replicas < 2 || lab.EtcdMembers < 3 || len(lab.Bridges) == 0 {
		return nil, fmt.Errorf("soak lab %+v: want at least 2 replicas, 3 etcd members and a bridge", lab)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x25b))
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(rng.Int64N(int64(hi-lo)))
	}
	var plan []Fault
	first := append([]Kind(nil), Kinds...)
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	at := Warmup
	for i := 0; ; i++ {
		var k Kind
		lo, hi := time.Duration(0), time.Duration(0)
		if i < len(first) {
			// The first round holds briefly, so that every kind fits in a
			// short soak (the 3 minutes of `make test`).
			k = first[i]
			lo, hi = holds[k][0], holds[k][0]+(holds[k][1]-holds[k][0])/4
		} else {
			k = Kinds[rng.IntN(len(Kinds))]
			lo, hi = holds[k][0], holds[k][1]
		}
		f := Fault{Kind: k, Target: target(rng, k, lab), Start: at, Hold: between(lo, hi)}
		// Slide it later until it fits with what is planned (deterministic:
		// the same plan slides the same way).
		for clash := true; clash; {
			clash = false
			for _, p := range plan {
				if conflicts(f, p) {
					f.Start = p.Start + p.span()
					clash = true
				}
			}
		}
		if f.Start+f.span() > end {
			if i < len(first) {
				at += MinGap // a kind that does not fit yet; the next one may
				continue
			}
			break
		}
		plan = append(plan, f)
		at += between(MinGap, MaxGap)
		if at > end {
			break
		}
	}
	sortFaults(plan)
	return plan, nil
}

func target(rng *rand.Rand, k Kind, lab Lab) string {
	replica := func() string { return fmt.Sprintf("r%d", rng.IntN(lab.Replicas)) }
	switch k {
	case KillReplica, PartitionEtcd:
		return replica()
	case StopEtcdMember:
		return fmt.Sprintf("m%d", rng.IntN(lab.EtcdMembers))
	case LoseEtcdQuorum:
		a := rng.IntN(lab.EtcdMembers)
		b := (a + 1 + rng.IntN(lab.EtcdMembers-1)) % lab.EtcdMembers
		if b < a {
			a, b = b, a
		}
		return fmt.Sprintf("m%d,m%d", a, b)
	case PartitionSwitch:
		return lab.Bridges[rng.IntN(len(lab.Bridges))] + "/" + replica()
	case WipeFlows, AlterFlows:
		return lab.Bridges[rng.IntN(len(lab.Bridges))]
	}
	return ""
}

func sortFaults(fs []Fault) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Start < fs[j-1].Start; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}
