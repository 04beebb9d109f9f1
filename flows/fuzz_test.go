package flows

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

// FuzzCompile feeds documents through the same gate production uses
// (topology.ParseJSON + Validate) and asserts, for every document that
// passes: Compile does not fail or panic, the compiled flows agree with the
// reference evaluator, and Diff from nothing and to itself behave.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint64(0), int64(0))
	}
	for seed := range uint64(8) {
		js, _ := json.Marshal(buildDoc(rand.New(rand.NewPCG(seed, 4))))
		f.Add(js, seed, int64(seed)*3600)
	}
	f.Fuzz(fuzzCompile)
}

func fuzzCompile(t *testing.T, data []byte, seed uint64, offset int64) {
	doc, err := topology.ParseJSON(data)
	if err != nil || topology.Validate(doc) != nil {
		return // never reaches Compile in production
	}
	r := rand.New(rand.NewPCG(seed, 5))
	at := genBase.Add(time.Duration(offset%(1<<40)) * time.Second)
	instants := append(genInstants(doc), at)
	if len(instants) > 8 {
		instants = instants[:8]
	}
	packets := genPackets(r, doc, 24)
	for _, dpid := range append(genDPIDs, "") {
		pop, _ := doc.BridgePop(dpid)
		for _, at := range instants {
			c, err := Compile(doc, dpid, at, DefaultOptions())
			if err != nil {
				t.Fatalf("Compile of a valid document: %v", err)
			}
			for _, p := range packets {
				if got, want := Simulate(c.Flows, DefaultOptions(), p), Evaluate(doc, pop, at, p); got != want {
					t.Fatalf("pop %q at %s packet %+v: Simulate %v, Evaluate %v", pop, at, p, got, want)
				}
			}
			if d := Diff(c.Flows, c.Flows); len(d) != 0 {
				t.Fatalf("Diff of a set with itself: %d changes", len(d))
			}
			if d := Diff(c.Flows, nil); len(d) != len(c.Flows) {
				t.Fatalf("Diff from nothing: %d changes for %d flows", len(d), len(c.Flows))
			}
		}
	}
}
