package topology

import (
	"encoding/json"
	"fmt"
)

// MaxStoredItemBytes is the largest item, etcd key plus JSON value, that
// the store (topology/store) writes: one item is one etcd key, and etcd at
// its default limits takes at most 1.5 MiB per request, of which the store
// uses at most 1 MiB for its batches.
const MaxStoredItemBytes = 1<<20 - 4096

// DefaultStoredKeyOverhead is the length of what the store puts before an
// item's "kind/name" in its etcd key, with its default prefix.
const DefaultStoredKeyOverhead = len("/op25b/config/g/0123456789abcdef.01234567/")

// ValidateItemSizes reports the items too large to be stored (a
// destination set with tens of thousands of prefixes, say), each against
// its JSON path, as a *ValidationError; keyOverhead is the store's key
// prefix length. Validate does not check this: it is a limit of the
// store, which applies it to every write; op25bctl lint applies it with
// DefaultStoredKeyOverhead so that it rejects what a PUT would.
func ValidateItemSizes(doc *Document, keyOverhead int) error {
	if doc == nil {
		return nil
	}
	var errs []FieldError
	check := func(path, key string, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			return
		}
		if n := keyOverhead + len(key) + len(data); n > MaxStoredItemBytes {
			errs = append(errs, FieldError{Field: path,
				Message: fmt.Sprintf("item is %d bytes encoded, more than the %d etcd accepts in one request; split it", n, MaxStoredItemBytes)})
		}
	}
	for i, d := range doc.Destinations {
		check(fmt.Sprintf("destinations[%d]", i), ItemDestinations+"/"+d.Name, d)
	}
	for i, s := range doc.Services {
		check(fmt.Sprintf("services[%d]", i), ItemServices+"/"+s.Name, s)
	}
	// Pools, relays and bridges have a few short fields: validated names
	// and prefixes keep them far below the limit.
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: errs}
}
