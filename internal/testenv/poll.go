package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond every 50 ms until it holds, and fails the test
// naming what it waited for once timeout has passed. Tests wait with
// generous deadlines this way instead of asserting how long anything took.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
