package l4

import (
	"context"
	"fmt"
	"time"
)

// Probe checks that every event loop is making progress: it posts an empty
// task to each and waits until all have run it. It returns nil when they
// all did before ctx ended, else an error naming the loops that did not.
// A loop blocked in epoll_wait is woken by the post, so an idle loop
// answers at once; only a loop stuck in a task or a handler does not. The
// systemd watchdog is fed only while Probe succeeds.
func (s *Server) Probe(ctx context.Context) error {
	s.mu.Lock()
	loops := s.loops
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	done := make([]chan struct{}, len(loops))
	for i, l := range loops {
		done[i] = make(chan struct{})
		l.post(func(*loop) { close(done[i]) })
	}
	var stuck []int
	for i, l := range loops {
		select {
		case <-done[i]:
		case <-l.exited:
		case <-ctx.Done():
			stuck = append(stuck, l.id)
		}
	}
	if len(stuck) > 0 {
		return fmt.Errorf("event loops %v have not answered: %w", stuck, ctx.Err())
	}
	return nil
}

// Stall blocks event loop i for d, as a handler caught in a loop would: it
// is fault injection, for exercising the watchdog (HAProxy's "debug dev
// loop" serves the same purpose). It returns once the loop has been asked.
func (s *Server) Stall(i int, d time.Duration) error {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	if i < 0 || i >= len(loops) {
		return fmt.Errorf("l4: no event loop %d (there are %d)", i, len(loops))
	}
	loops[i].post(func(*loop) { time.Sleep(d) })
	return nil
}
