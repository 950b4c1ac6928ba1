package l4

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4/internal/sock"
	"github.com/splicerlb/splicer/l4/internal/sockmap"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// BenchmarkKernelRelay sets the relay through splicer beside the kernel's
// socket-to-socket relay (SOCKMAP, l4/internal/sockmap) and beside no
// proxy at all, on a 64-byte ping-pong and a one-way stream of 1 MiB
// writes. splicer does not use the kernel relay (docs/architecture.md,
// "No kernel fast path"); this is the measurement behind that decision,
// kept so that it can be repeated on another kernel.
//
// The kernel relay runs in softirq and kworker context, not in the
// relaying process, so the CPU figures count every thread that works for
// the exchange: cpu-µs/op is this process's threads (the Go client and
// backend, and splicer's loops when it relays) plus the kernel's worker
// and softirq threads, from /proc/.../schedstat; kthread-µs/op is the
// kernel threads' part, and wakeups/op their voluntary context switches
// plus this process's. A proxy's cost is its row minus the direct row.
// The kernel threads serve the whole machine, so on a busy one their
// share is noisy: compare medians of -count runs.
func BenchmarkKernelRelay(b *testing.B) {
	m, err := sockmap.Open(64)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		b.Skipf("the kernel relay needs CAP_BPF and CAP_NET_ADMIN (run as root): %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	echoBE := startBackend(b, echo)
	var sunk atomic.Int64 // bytes the sink backend has read
	sinkBE := startBackend(b, func(c net.Conn) {
		buf := make([]byte, 1<<20)
		for {
			n, err := c.Read(buf)
			sunk.Add(int64(n))
			if err != nil {
				c.Close()
				return
			}
		}
	})
	echoSrv := startServer(b, testConfig(b, []netip.AddrPort{echoBE.addr}, nil))
	sinkSrv := startServer(b, testConfig(b, []netip.AddrPort{sinkBE.addr}, nil))
	routes := []struct {
		name       string
		echo, sink string
	}{
		{"direct", echoBE.addr.String(), sinkBE.addr.String()},
		{"splicer", echoSrv.Addrs("fe")[0].String(), sinkSrv.Addrs("fe")[0].String()},
		{"sockmap", kernelRelay(b, m, echoBE.addr), kernelRelay(b, m, sinkBE.addr)},
	}
	for _, r := range routes {
		b.Run("pingpong/"+r.name, func(b *testing.B) {
			c := dialBench(b, r.echo)
			msg, buf := make([]byte, 64), make([]byte, 64)
			exchange := func() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; i < 100; i++ {
				exchange() // the connection relaying, the relay set up
			}
			start := takeCost(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				exchange()
			}
			b.StopTimer()
			start.report(b, b.N)
		})
	}
	for _, r := range routes {
		b.Run("stream/"+r.name, func(b *testing.B) {
			c := dialBench(b, r.sink)
			chunk := make([]byte, 1<<20)
			b.SetBytes(int64(len(chunk)))
			start := takeCost(b)
			want := sunk.Load() + int64(b.N)*int64(len(chunk))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			// A write returns once the bytes are queued; the kernel relay
			// queues without bound, so wait for them to arrive.
			testutil.WaitFor(b, time.Minute, "the stream delivered", func() bool { return sunk.Load() >= want })
			b.StopTimer()
			start.report(b, b.N)
		})
	}
}

// dialBench connects to addr for the length of a benchmark.
func dialBench(b *testing.B, addr string) *net.TCPConn {
	b.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Hour))
	return c.(*net.TCPConn)
}

// kernelRelay listens on loopback and puts each client it accepts, with a
// new connection to backend, in m: from then on the kernel relays the
// pair. It returns the address to dial; cleanup stops it and closes every
// pair.
func kernelRelay(b *testing.B, m *sockmap.Map, backend netip.AddrPort) string {
	b.Helper()
	lfd, err := sock.Listen(netip.MustParseAddrPort("127.0.0.1:0"), 64, false)
	if err != nil {
		b.Fatal(err)
	}
	addr, err := sock.BoundAddr(lfd)
	if err != nil {
		b.Fatal(err)
	}
	var (
		mu    sync.Mutex
		fds   []int
		pairs []sockmap.Pair
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		pfd := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(pfd, -1); err != nil && !errors.Is(err, unix.EINTR) {
				return
			}
			cfd, _, err := sock.Accept(lfd)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return // the listener was shut down
			}
			bfd, err := dialBlocking(backend)
			if err != nil {
				unix.Close(cfd)
				continue
			}
			_ = sock.SetNoDelay(bfd) // as splicer does; the client inherits it from the listener
			_ = sock.SetNoDelay(cfd)
			p, err := m.Add(cfd, bfd)
			mu.Lock()
			fds = append(fds, cfd, bfd)
			if err == nil {
				pairs = append(pairs, p)
			}
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		unix.Shutdown(lfd, unix.SHUT_RDWR) // ends the accept loop's poll
		wg.Wait()
		unix.Close(lfd)
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pairs {
			m.Remove(p)
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	return addr.String()
}

// dialBlocking connects a new socket to addr and waits for the connect.
func dialBlocking(addr netip.AddrPort) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// threadUse is a thread's run time and voluntary context switches.
type threadUse struct {
	run time.Duration
	sw  int64
}

// cost is a reading, by thread, of the CPU time and wake-ups spent so far
// by this process's threads and by the kernel's worker and softirq
// threads. Threads come and go (kworkers above all): a difference counts
// only those present in both readings.
type cost struct{ self, kernel map[string]threadUse }

func takeCost(b *testing.B) cost {
	b.Helper()
	self, err := filepath.Glob("/proc/self/task/*")
	if err != nil || len(self) == 0 {
		b.Fatalf("no threads under /proc/self/task: %v", err)
	}
	all, _ := filepath.Glob("/proc/[0-9]*")
	var kernel []string
	for _, d := range all {
		comm, err := os.ReadFile(d + "/comm")
		if err == nil && (strings.HasPrefix(string(comm), "kworker") || strings.HasPrefix(string(comm), "ksoftirqd")) {
			kernel = append(kernel, d)
		}
	}
	return cost{self: readThreads(self), kernel: readThreads(kernel)}
}

// since is what the threads read in c used from then to now.
func since(then, now map[string]threadUse) threadUse {
	var d threadUse
	for id, u := range now {
		if t, ok := then[id]; ok {
			d.run += u.run - t.run
			d.sw += u.sw - t.sw
		}
	}
	return d
}

// report adds the cost since c, per op of n, to the benchmark's output.
func (c cost) report(b *testing.B, n int) {
	now := takeCost(b)
	self, kernel := since(c.self, now.self), since(c.kernel, now.kernel)
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
	b.ReportMetric(per(self.run+kernel.run), "cpu-µs/op")
	b.ReportMetric(per(kernel.run), "kthread-µs/op")
	b.ReportMetric(float64(self.sw+kernel.sw)/float64(n), "wakeups/op")
}

// readThreads reads the use of the threads at the /proc directories dirs,
// by directory; a thread gone meanwhile is left out.
func readThreads(dirs []string) map[string]threadUse {
	m := make(map[string]threadUse, len(dirs))
	for _, d := range dirs {
		if run, sw, ok := readThread(d); ok {
			m[filepath.Base(d)] = threadUse{run, sw}
		}
	}
	return m
}

// readThread reads one thread's run time (schedstat, in ns) and
// voluntary context switches (status).
func readThread(dir string) (time.Duration, int64, bool) {
	st, err := os.ReadFile(dir + "/schedstat")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(st))
	if len(f) < 1 {
		return 0, 0, false
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return 0, 0, false
	}
	var sw int64
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "voluntary_ctxt_switches:"); ok {
			sw, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return time.Duration(ns), sw, true
}
