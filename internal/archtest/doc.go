// Package archtest holds no code: its test checks op25b's package graph
// against the import rules the package READMEs state (what each package
// may import and what it must not), with `go list -deps`, so that a rule
// broken by a new import fails `go test ./...` instead of surfacing as a
// 25 MB client or a pure package that suddenly does I/O.
package archtest
