package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/op25b/op25b/topology"
)

// lintProblem is one problem of a policy file, where an editor finds it.
type lintProblem struct {
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// lintResult is lint's -o json output.
type lintResult struct {
	File     string        `json:"file"`
	Valid    bool          `json:"valid"`
	Problems []lintProblem `json:"problems"`
}

// lintError fails the command after the problems were printed.
type lintError struct {
	file     string
	problems []lintProblem
}

func (e *lintError) Error() string {
	if len(e.problems) == 1 {
		return fmt.Sprintf("%s: 1 problem", e.file)
	}
	return fmt.Sprintf("%s: %d problems", e.file, len(e.problems))
}

// runLint checks a policy file with the server's own rules (topology.Parse
// and topology.Validate, compiled into op25bctl), without any server.
func runLint(g *globals, args []string) error {
	fs := g.flagSet("lint")
	file := fs.String("f", "", "policy document, JSON or YAML (- for stdin)")
	if _, err := g.parseInterleaved(fs, args); err != nil {
		return err
	}
	data, err := readFile(g, *file)
	if err != nil {
		return err
	}
	name := *file
	if name == "-" {
		name = "<stdin>"
	}
	problems := lint(data)
	if g.jsonOutput() {
		if err := g.printJSON(lintResult{File: name, Valid: len(problems) == 0, Problems: nonNil(problems)}); err != nil {
			return err
		}
	} else {
		for _, p := range problems {
			loc := name
			if p.Line > 0 {
				loc += ":" + strconv.Itoa(p.Line)
			}
			if p.Field != "" {
				fmt.Fprintf(g.stdout, "%s: %s: %s\n", loc, p.Field, p.Message)
			} else {
				fmt.Fprintf(g.stdout, "%s: %s\n", loc, p.Message)
			}
		}
	}
	if len(problems) > 0 {
		return &lintError{file: name, problems: problems}
	}
	if !g.jsonOutput() {
		fmt.Fprintf(g.stdout, "%s: valid\n", name)
	}
	return nil
}

// yamlLine finds the line yaml.v3 names in its messages ("line 5: ...").
var (
	yamlLine   = regexp.MustCompile(`^line (\d+): `)
	jsonOffset = regexp.MustCompile(`(?:near|at) byte (\d+)`)
)

// lint returns every problem of a document, each with its line: what a PUT
// of it would be refused for.
func lint(data []byte) []lintProblem {
	stripped, _, err := splitRevision(data)
	if err != nil {
		return []lintProblem{{Line: 0, Field: "revision", Message: err.Error()}}
	}
	doc, err := topology.Parse(stripped)
	if err != nil {
		var perr *topology.ParseError
		if !errors.As(err, &perr) {
			return []lintProblem{{Message: err.Error()}}
		}
		p := lintProblem{Field: perr.Field, Message: perr.Message}
		switch {
		case perr.Field != "":
			p.Line = topology.Lines(data, []string{perr.Field})[perr.Field]
		case yamlLine.MatchString(perr.Message):
			m := yamlLine.FindStringSubmatch(perr.Message)
			p.Line, _ = strconv.Atoi(m[1])
			p.Message = perr.Message[len(m[0]):]
		case jsonOffset.MatchString(perr.Message):
			off, _ := strconv.ParseInt(jsonOffset.FindStringSubmatch(perr.Message)[1], 10, 64)
			p.Line = topology.LineOfOffset(data, off)
		}
		return []lintProblem{p}
	}
	err = topology.Validate(doc)
	if err == nil {
		// The store's own limit, which a PUT also meets.
		err = topology.ValidateItemSizes(doc, topology.DefaultStoredKeyOverhead)
	}
	if err == nil {
		return nil
	}
	var verr *topology.ValidationError
	if !errors.As(err, &verr) {
		return []lintProblem{{Message: err.Error()}}
	}
	paths := make([]string, len(verr.Errors))
	for i, fe := range verr.Errors {
		paths[i] = fe.Field
	}
	lines := topology.Lines(data, paths)
	out := make([]lintProblem, len(verr.Errors))
	for i, fe := range verr.Errors {
		out[i] = lintProblem{Line: lines[fe.Field], Field: fe.Field, Message: fe.Message}
	}
	return out
}
