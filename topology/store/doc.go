// Package store keeps op25b's policy document in etcd and gives every
// replica a consistent, validated, in-memory copy of it.
//
// It sits at the start of the pipeline policy → flows → switch → status:
// the API writes through Store, the controller reads through Cache, and
// masters publish per-bridge status records back through Store.
//
// # Key layout (under a prefix, default "/op25b/")
//
//	config/current                  commit record: {"generation": G, "time", "who"}
//	config/g/<G>/ports              JSON array of ports (absent when the document omits it)
//	config/g/<G>/pools/<name>       one JSON Pool per key
//	config/g/<G>/relays/<name>      one JSON Relay per key
//	config/g/<G>/destinations/<name>
//	config/g/<G>/services/<name>
//	config/g/<G>/bridges/<dpid>
//	audit/<time>.<random>           one AuditRecord per committed write
//	history/<time>.<random>/<i>.<n> chunk i (n bytes) of that write's history:
//	                                every item change, old and new value (history.go)
//	status/bridges/<dpid>           BridgeStatus, bound to the writing master's lease
//	replicas/<id>                   ReplicaInfo, bound to the replica's lease
//
// The ModRevision of config/current is "the document revision": every
// committed write changes that key, in the same transaction as its audit
// record, so the revision returned to a client, the audit record's
// revision and the revision a replica reports as applied are one number.
//
// # Why generations
//
// etcd refuses requests over 1.5 MiB and transactions over 128 operations
// by default, while a large ISP's document has 100k pools (~10 MiB). A
// write that touches few items is one transaction conditioned on the
// ModRevision of config/current (optimistic concurrency: a lost race is
// ErrConflict, never a merge). A larger write (a whole Replace) stores a
// complete NEW generation G' in as many batches as needed — invisible to
// readers, who only follow config/current — and then flips config/current
// to G' in one conditional transaction. Readers read config/current and
// then range its generation at that same etcd revision (WithRev), so they
// see the old document or the new one, never a mix, even while the old
// generation is being deleted.
//
// A generation is named "<read revision, 16 hex>.<random>" where the read
// revision is the etcd revision at which its writer read config/current.
// After a successful flip at revision F, every other generation whose
// read revision is below F belongs either to the previous document or to
// a writer whose own flip is bound to fail (its condition names a
// ModRevision older than F), so it is deleted; generations read at F or
// later belong to writers still in progress and are left alone. This also
// cleans the orphans of replaces that crashed half-way.
//
// Items are keyed by name, so Load returns every list sorted by name
// (bridges by dpid); list order carries no meaning in the contract.
//
// # Reading a 100k-pool document cheaply
//
// A Store remembers the last state it read in full or wrote. Before
// reusing it, one read-only transaction (answered from etcd's in-memory
// index) checks that config/current still has the same ModRevision and
// that its generation has the same number of keys, none modified since;
// anything else — another writer, an edit by hand — means a full read.
// A Cache applies in-place commits straight from the watch events and
// only re-reads for a new generation, a hand edit or a compaction.
//
// # Failure
//
// Any etcd error other than a lost race is returned wrapped with
// ErrUnavailable; nothing is partially applied (an unflipped generation is
// invisible). A value that does not decode or validate — written by hand,
// say — makes Load fail with ErrInvalidStored, and a Cache keeps serving
// the last good document while reporting the problem in Snapshot.Err: a
// replica never enforces a half-read or invalid document.
package store
