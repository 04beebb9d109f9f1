package fakeswitch

import (
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
)

// reasonDelete is OFPRR_DELETE: a flow removed by a flow-mod.
const reasonDelete = 2

// change is one flow-table change, for the flow monitors.
type change struct {
	event ofwire.FlowUpdateEvent
	key   flowKey
	entry entry
}

// notifications are the flow monitor messages one change set owes, sent
// after Switch.mu is released.
type notifications map[*conn][]byte

func (n notifications) send() {
	for c, body := range n {
		c.send(multipartReply(0, ofp.MultipartTypeExperimenter, false, body))
	}
}

// applyLocked applies fms in order, as one atomic change (a bundle commit
// or a single flow-mod), and returns the updates every monitoring
// connection is owed: by's own changes abbreviated to the first xid (Open
// vSwitch sends one abbreviated update per flush), everyone else's in full.
// by is nil for a change made out of band. Switch.mu must be held.
func (s *Switch) applyLocked(fms []flowMod, by *conn, xids []uint32) notifications {
	var changes []change
	for _, fm := range fms {
		changes = s.applyOne(fm, changes)
	}
	s.stats.FlowMods += len(fms)
	if len(changes) == 0 {
		return nil
	}
	close(s.changed)
	s.changed = make(chan struct{})
	notes := notifications{}
	for c := range s.conns {
		var body []byte
		for _, ch := range changes {
			flags, watched := c.watching(ch.key.table)
			if !watched || !flags.reports(ch.event) {
				continue
			}
			if body == nil {
				body = flowMonitorBody()
			}
			if c == by {
				if len(xids) > 0 {
					body = flowUpdateAbbrev(body, xids[0])
				}
				break
			}
			e := ch.entry
			if flags&monitorFlagSet(ofwire.MonitorActions) == 0 {
				e.instructions = nil
			}
			body = flowUpdate(body, ch.event, reasonDelete, ch.key, &e)
		}
		if body != nil {
			notes[c] = body
		}
	}
	return notes
}

// watching returns the union of the flags of c's monitors on table.
// Switch.mu must be held.
func (c *conn) watching(table uint8) (monitorFlagSet, bool) {
	var flags monitorFlagSet
	found := false
	for _, m := range c.monitors {
		if m.table == table || m.table == uint8(ofp.TableAll) {
			flags |= monitorFlagSet(m.flags)
			found = true
		}
	}
	return flags, found
}

type monitorFlagSet ofwire.MonitorFlags

func (f monitorFlagSet) reports(ev ofwire.FlowUpdateEvent) bool {
	switch ev {
	case ofwire.FlowAdded:
		return f&monitorFlagSet(ofwire.MonitorAdd) != 0
	case ofwire.FlowDeleted:
		return f&monitorFlagSet(ofwire.MonitorDelete) != 0
	case ofwire.FlowModified:
		return f&monitorFlagSet(ofwire.MonitorModify) != 0
	}
	return false
}

// applyOne applies one flow-mod (OpenFlow 1.3 §6.4) and appends what it
// changed.
func (s *Switch) applyOne(fm flowMod, changes []change) []change {
	key := flowKey{table: fm.table, priority: fm.priority, match: string(fm.match)}
	cookieOK := func(e *entry) bool { return e.cookie&fm.cookieMask == fm.cookie&fm.cookieMask }
	switch fm.command {
	case ofp.FlowAdd:
		e := &entry{cookie: fm.cookie, idle: fm.idle, hard: fm.hard, flags: fm.flags, instructions: fm.instructions}
		s.table[key] = e
		changes = append(changes, change{ofwire.FlowAdded, key, *e})
	case ofp.FlowModifyStrict:
		if e, ok := s.table[key]; ok && cookieOK(e) {
			e.instructions = fm.instructions
			changes = append(changes, change{ofwire.FlowModified, key, *e})
		}
	case ofp.FlowModify:
		for k, e := range s.table {
			if k.table == fm.table && cookieOK(e) && (emptyMatch(fm.match) || k.match == key.match) {
				e.instructions = fm.instructions
				changes = append(changes, change{ofwire.FlowModified, k, *e})
			}
		}
	case ofp.FlowDeleteStrict:
		if e, ok := s.table[key]; ok && cookieOK(e) {
			delete(s.table, key)
			changes = append(changes, change{ofwire.FlowDeleted, key, *e})
		}
	case ofp.FlowDelete:
		for k, e := range s.table {
			if (fm.table == uint8(ofp.TableAll) || k.table == fm.table) && cookieOK(e) && (emptyMatch(fm.match) || k.match == key.match) {
				delete(s.table, k)
				changes = append(changes, change{ofwire.FlowDeleted, k, *e})
			}
		}
	}
	return changes
}
