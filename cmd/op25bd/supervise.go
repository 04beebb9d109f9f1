package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// supervisor owns every goroutine of the daemon. Its parts run in one
// errgroup, and one cancel stops them all: the signal context, or the
// first part that fails (or ends by itself, which a daemon part must not).
// The parts then stop in stages: stage 0 first, and each later stage only
// once every part of the stage before has returned. The stages keep the
// stop order that never opens a hole: leave the cluster while etcd and the
// switch sessions are still there, then the API, then the switches, then
// the document cache.
type supervisor struct {
	group  *errgroup.Group
	ctx    context.Context // done at the signal or the first failure
	log    *slog.Logger
	stages []*stage
}

type stage struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]bool // for the "still stopping" log
}

// newSupervisor makes a supervisor with n stages under parent.
func newSupervisor(parent context.Context, n int, logger *slog.Logger) *supervisor {
	g, ctx := errgroup.WithContext(parent)
	s := &supervisor{group: g, ctx: ctx, log: logger}
	for i := 0; i < n; i++ {
		// A stage's context is not derived from ctx: it ends when the
		// stage's turn comes, not at the signal.
		c, cancel := context.WithCancel(context.Background())
		s.stages = append(s.stages, &stage{ctx: c, cancel: cancel, running: map[string]bool{}})
	}
	return s
}

// Go runs part in stage n. Its context is done when stage n is told to
// stop; it must then return promptly. An error, or returning before that,
// stops the daemon, and the error is what Wait returns.
func (s *supervisor) Go(n int, name string, part func(context.Context) error) {
	st := s.stages[n]
	st.wg.Add(1)
	st.mu.Lock()
	st.running[name] = true
	st.mu.Unlock()
	s.group.Go(func() error {
		defer st.wg.Done()
		defer func() {
			st.mu.Lock()
			delete(st.running, name)
			st.mu.Unlock()
		}()
		err := part(st.ctx)
		if err == nil && st.ctx.Err() == nil {
			err = errors.New("stopped by itself")
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// Cause says why Done closed.
func (s *supervisor) Cause() error { return context.Cause(s.ctx) }

// Wait blocks until Done, calls stopping with the cause, stops the stages
// in order and returns the first part's error, nil when a signal (the
// parent context) stopped the daemon.
func (s *supervisor) Wait(stopping func(cause error)) error {
	<-s.ctx.Done()
	if stopping != nil {
		stopping(s.Cause())
	}
	for i, st := range s.stages {
		st.cancel()
		s.waitStage(i, st)
	}
	return s.group.Wait()
}

// waitStage waits for a stage, saying every few seconds which part holds
// the stop up (systemd would SIGKILL it after TimeoutStopSec).
func (s *supervisor) waitStage(i int, st *stage) {
	done := make(chan struct{})
	go func() { st.wg.Wait(); close(done) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			st.mu.Lock()
			var names []string
			for n := range st.running {
				names = append(names, n)
			}
			st.mu.Unlock()
			sort.Strings(names)
			s.log.Warn("still stopping", "stage", i, "waiting_for", names)
		}
	}
}
