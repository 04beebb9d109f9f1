package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// The stages stop in order, each only after the previous one returned, and
// a signal (parent cancel) is a clean stop.
func TestSupervisorStopsStagesInOrder(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	s := newSupervisor(parent, 3, slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	var order []string
	part := func(name string, linger time.Duration) func(context.Context) error {
		return func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(linger) // a later stage must wait for this
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			return nil
		}
	}
	s.Go(2, "cache", part("cache", 0))
	s.Go(0, "cluster", part("cluster", 50*time.Millisecond))
	s.Go(1, "api", part("api", 0))
	s.Go(0, "reload", part("reload", 0))
	cancel()
	if err := s.Wait(nil); err != nil {
		t.Fatalf("Wait after a signal = %v, want nil", err)
	}
	got := strings.Join(order, ",")
	if got != "reload,cluster,api,cache" {
		t.Errorf("stop order %s, want reload,cluster,api,cache", got)
	}
}

// A failing part stops the daemon through the same ordered path; Wait
// returns its error, and a part that ends by itself counts as a failure.
func TestSupervisorFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		part func(context.Context) error
		want string
	}{
		{"error", func(context.Context) error { return errors.New("listener gone") }, "api: listener gone"},
		{"returns early", func(context.Context) error { return nil }, "api: stopped by itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSupervisor(context.Background(), 2, slog.New(slog.DiscardHandler))
			stopped := make(chan struct{})
			s.Go(0, "cluster", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil })
			s.Go(1, "api", tc.part)
			var cause error
			err := s.Wait(func(c error) { cause = c })
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Wait = %v, want %q", err, tc.want)
			}
			select {
			case <-stopped:
			default:
				t.Errorf("stage 0 was not stopped")
			}
			if cause == nil || cause.Error() != tc.want {
				t.Errorf("stopping cause %v, want %q", cause, tc.want)
			}
		})
	}
}
