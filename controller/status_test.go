package controller

import "testing"

// StatusOf answers for one bridge what Status lists for all of them, and
// accepts the dpid in either case like SetDesired and Forget.
func TestStatusOfMatchesStatus(t *testing.T) {
	rc := startController(t, Config{})
	connectFake(t, rc, 0xab, nil)
	waitFor(t, "switch connected", func() bool { return len(rc.Connected()) == 1 })
	all := rc.Status()
	if len(all) != 1 {
		t.Fatalf("Status() = %+v, want one bridge", all)
	}
	if got, ok := rc.StatusOf("00000000000000ab"); !ok || got != all[0] {
		t.Errorf("StatusOf = %+v, %v; want %+v", got, ok, all[0])
	}
	if got, ok := rc.StatusOf("0000000000000042"); ok {
		t.Errorf("StatusOf(unknown bridge) = %+v, true", got)
	}
}
