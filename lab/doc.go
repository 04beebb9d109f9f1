// Package lab is op25b's Mininet lab: a model PoP with two subscriber-facing
// OVS bridges, real SMTP servers (aiosmtpd) and clients (swaks), and the
// reachability matrix of docs/semantics.md (see README.md). The lab itself is
// Python (lab.py, run by run.sh); this Go package only holds its tests:
// the lab's expectations are checked against flows.Evaluate and the
// compiled flows without root, and the whole lab runs under CI.
//
// It sits at the end of the pipeline policy → flows → switch → status: it
// observes what a subscriber actually experiences.
package lab
