package store

import "time"

// SetProbeInterval lets tests see an etcd outage in the cache sooner.
func (c *Cache) SetProbeInterval(d time.Duration) { c.probeInterval = d }

// CurrentKey exposes the commit record's key so tests can corrupt the
// stored document by hand, like an operator with etcdctl would.
func (s *Store) CurrentKey() string { return s.currentKey() }

// GenerationKey exposes the key prefix of one generation.
func (s *Store) GenerationKey(gen string) string { return s.generationKey(gen) }
