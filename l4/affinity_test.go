package l4

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/pkg/config"
)

// twoCPUs returns two CPUs this process may run on, or skips the test.
func twoCPUs(t *testing.T) []int {
	t.Helper()
	allowed, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) < 2 {
		t.Skipf("the process may run on CPUs %s only: pinning two loops to different CPUs needs two", config.FormatCPUList(allowed))
	}
	return allowed[:2]
}

// cpusAllowed reads Cpus_allowed_list of one thread of this process (or of
// the process itself for tid 0).
func cpusAllowed(t *testing.T, tid int) string {
	t.Helper()
	path := "/proc/self/status"
	if tid != 0 {
		path = fmt.Sprintf("/proc/self/task/%d/status", tid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no Cpus_allowed_list", path)
	return ""
}

// TestLoopsPinnedAndSteered pins two loops, in the reverse of the CPUs'
// order, and checks that each loop's thread may run on its CPU alone while
// the process keeps its mask, and that a connection whose SYN is sent from
// a CPU is served by the loop pinned there.
func TestLoopsPinnedAndSteered(t *testing.T) {
	cpus := twoCPUs(t)
	processMask := cpusAllowed(t, 0)
	be := startBackend(t, echo)
	spec := fmt.Sprintf("%d,%d", cpus[1], cpus[0])
	cfg, err := config.New().CPUAffinity(spec).Frontend("fe").Listen("127.0.0.1:0").Backend(be.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Global.Workers != 2 {
		t.Fatalf("workers %d, want 2 from the CPU list", cfg.Global.Workers)
	}
	s := startServer(t, cfg)
	for i, want := range []int{cpus[1], cpus[0]} {
		l := s.loops[i]
		if l.cpu != want || l.tid == 0 {
			t.Fatalf("loop %d: cpu %d, thread %d; want cpu %d and a thread", i, l.cpu, l.tid, want)
		}
		if got := cpusAllowed(t, l.tid); got != strconv.Itoa(want) {
			t.Errorf("loop %d's thread %d may run on CPUs %s, want %d", i, l.tid, got, want)
		}
	}
	if got := cpusAllowed(t, 0); got != processMask {
		t.Errorf("the process may run on CPUs %s after Start, want %s as before", got, processMask)
	}

	if !steersByCPU() {
		t.Skip("this kernel does not pick a SO_REUSEPORT listener by SO_INCOMING_CPU (Linux 6.2 and later do)")
	}
	addr := s.Addrs("fe")[0].String()
	for round := 0; round < 10; round++ {
		for i, l := range s.loops {
			local := dialOnCPU(t, l.cpu, addr)
			got := loopServing(t, s, local)
			if got != i {
				t.Errorf("round %d: a connection sent from CPU %d is served by loop %d (CPU %d), want loop %d", round, l.cpu, got, s.loops[got].cpu, i)
			}
		}
	}
}

// dialOnCPU connects to addr from a thread pinned to cpu, so that the SYN
// is sent, and on loopback received, on that CPU; it echoes one byte and
// returns the client's address.
func dialOnCPU(t *testing.T, cpu int, addr string) netip.AddrPort {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread's mask is changed, so it ends with
		// this goroutine rather than serve others.
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- result{err: fmt.Errorf("pin the dialing thread to CPU %d: %w", cpu, err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		done <- result{c, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	r.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r.c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return r.c.LocalAddr().(*net.TCPAddr).AddrPort()
}

// loopServing returns the index of the loop serving the client at addr.
func loopServing(t *testing.T, s *Server, addr netip.AddrPort) int {
	t.Helper()
	found := -1
	s.eachLoop(func(l *loop) {
		for c := range l.liveConns() {
			if c.client == addr {
				found = l.id
			}
		}
	})
	if found < 0 {
		t.Fatalf("no loop serves %v", addr)
	}
	return found
}

func TestPinningRefusesCPUsNotAllowed(t *testing.T) {
	allowed, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if allowed[len(allowed)-1] == config.MaxCPU {
		t.Skipf("the process may run on CPU %d", config.MaxCPU)
	}
	be := startBackend(t, echo)
	s := newPinnedServer(t, 0, fmt.Sprintf("%d,%d", allowed[0], config.MaxCPU), be)
	defer s.Close()
	err = s.Start()
	want := fmt.Sprintf("global.cpu_affinity: CPU %d is not one this process may run on (it may use %s: see taskset, systemd's CPUAffinity= or the cgroup's cpuset)",
		config.MaxCPU, config.FormatCPUList(allowed))
	if err == nil || err.Error() != want {
		t.Fatalf("Start: %v\nwant: %s", err, want)
	}
	if s.Started() || s.Addrs("fe") != nil {
		t.Errorf("a server that failed to start serves %v", s.Addrs("fe"))
	}
}

func TestAutoAffinityWrapsRound(t *testing.T) {
	allowed, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	n := len(allowed) + 1
	cpus, err := loopCPUs(config.CPUAffinity{Auto: true}, n)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cpus {
		if want := allowed[i%len(allowed)]; c != want {
			t.Errorf("loop %d on CPU %d, want %d (allowed %v)", i, c, want, allowed)
		}
	}
	if cpus, err := loopCPUs(config.CPUAffinity{}, n); cpus != nil || err != nil {
		t.Errorf("no affinity: %v, %v; want nil, nil", cpus, err)
	}
}

func TestKernelAtLeast(t *testing.T) {
	cases := []struct {
		release string
		want    bool
	}{
		{"6.18.44-fc-v1272", true},
		{"6.2.0", true},
		{"6.2-rc1", true},
		{"6.1.90", false},
		{"5.15.0-91-generic", false},
		{"7.0", true},
		{"garbage", false},
		{"6", false},
	}
	for _, tc := range cases {
		if got := kernelAtLeast(tc.release, 6, 2); got != tc.want {
			t.Errorf("kernelAtLeast(%q, 6, 2) = %v, want %v", tc.release, got, tc.want)
		}
	}
}

// listenerCPUs returns the SO_INCOMING_CPU of each loop's listeners, by
// loop.
func listenerCPUs(t *testing.T, s *Server) [][]int {
	t.Helper()
	var got [][]int
	var errs []error
	s.eachLoop(func(l *loop) {
		var cpus []int
		for _, ln := range l.listeners {
			c, err := sock.IncomingCPU(ln.fd)
			if err != nil {
				errs = append(errs, err)
			}
			cpus = append(cpus, c)
		}
		got = append(got, cpus)
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return got
}

// TestHandOffRepointsSteering hands the listening sockets of a server with
// pinned loops to one without, as an upgrade that drops cpu_affinity does,
// then to one pinned the other way round: each time, every listener steers
// to the CPU of the loop that now holds it, or to none.
func TestHandOffRepointsSteering(t *testing.T) {
	cpus := twoCPUs(t)
	be := startBackend(t, echo)
	var prev *Server
	for _, spec := range []string{fmt.Sprintf("%d,%d", cpus[0], cpus[1]), "", fmt.Sprintf("%d,%d", cpus[1], cpus[0])} {
		s := newPinnedServer(t, 2, spec, be)
		if prev != nil {
			socks, err := prev.Sockets()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Inherit(socks); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if prev != nil {
			prev.HandOff()
		}
		want := [][]int{{-1}, {-1}}
		if spec != "" {
			want = [][]int{{s.loops[0].cpu}, {s.loops[1].cpu}}
		}
		if got := listenerCPUs(t, s); !reflect.DeepEqual(got, want) {
			t.Errorf("cpu_affinity %q: listeners steer to CPUs %v by loop, want %v", spec, got, want)
		}
		prev = s
	}
}

// newPinnedServer returns a server, not started, of workers loops pinned
// as spec says, with one frontend in front of be.
func newPinnedServer(t *testing.T, workers int, spec string, be *testBackend) *Server {
	t.Helper()
	cfg, err := config.New().Workers(workers).CPUAffinity(spec).
		Frontend("fe").Listen("127.0.0.1:0").Backend(be.addr.String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
