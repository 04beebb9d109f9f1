package store

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/op25b/op25b/topology"
)

// TODO(D1): switch to topology.Validate and (*Document).Clone once the
// topology validation lands; until then these keep the store honest about
// the one property it relies on itself: names that are unique per kind and
// safe to use as etcd key segments.

func validateDocument(doc *topology.Document) error {
	if doc == nil {
		return fmt.Errorf("document is missing")
	}
	check := func(kind string, names []string) error {
		seen := make(map[string]bool, len(names))
		for i, n := range names {
			if n == "" || strings.ContainsAny(n, "/\x00") {
				return fmt.Errorf("%s[%d]: invalid name %q", kind, i, n)
			}
			if seen[n] {
				return fmt.Errorf("%s[%d]: duplicate name %q", kind, i, n)
			}
			seen[n] = true
		}
		return nil
	}
	for _, k := range itemKinds {
		if err := check(k.name, k.names(doc)); err != nil {
			return err
		}
	}
	return nil
}

func cloneDocument(doc *topology.Document) *topology.Document {
	data, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("clone document: %v", err)) // Document always marshals
	}
	var out topology.Document
	if err := json.Unmarshal(data, &out); err != nil {
		panic(fmt.Sprintf("clone document: %v", err))
	}
	return &out
}
