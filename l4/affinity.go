package l4

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
)

// CPU locality (global.cpu_affinity). Each loop's goroutine is locked to
// its OS thread, and that thread is pinned to one CPU, as HAProxy's cpu-map
// pins threads and nginx's worker_cpu_affinity pins workers. Each loop's
// TCP listening sockets carry the loop's CPU in SO_INCOMING_CPU, so that
// the kernel hands a new connection to the listener of the loop on the CPU
// that processed its SYN: the connection's softirq work, its loop and its
// cache lines stay on one core. UDP sockets are not steered: all of a
// client's datagrams must reach the one loop holding its flow, which the
// hash of its address guarantees and the CPU a datagram arrives on does
// not.

// noCPU marks a loop that is not pinned.
const noCPU = -1

// loopCPUs returns the CPU of each of n loops under a, or nil when a pins
// nothing. Every CPU must be one the process may run on now: the error
// names the setting and lists the CPUs it may use.
func loopCPUs(a config.CPUAffinity, n int) ([]int, error) {
	if !a.Enabled() {
		return nil, nil
	}
	allowed, err := allowedCPUs()
	if err != nil {
		return nil, fmt.Errorf("global.cpu_affinity: %w", err)
	}
	cpus := make([]int, n)
	if a.Auto {
		for i := range cpus {
			cpus[i] = allowed[i%len(allowed)]
		}
		return cpus, nil
	}
	if len(a.CPUs) != n {
		return nil, fmt.Errorf("global.cpu_affinity lists %d CPUs for %d workers", len(a.CPUs), n)
	}
	var set unix.CPUSet
	for _, c := range allowed {
		set.Set(c)
	}
	for i, c := range a.CPUs {
		if !set.IsSet(c) {
			return nil, fmt.Errorf("global.cpu_affinity: CPU %d is not one this process may run on (it may use %s: see taskset, systemd's CPUAffinity= or the cgroup's cpuset)",
				c, config.FormatCPUList(allowed))
		}
		cpus[i] = c
	}
	return cpus, nil
}

// allowedCPUs lists, in ascending order, the CPUs the calling thread may
// run on. Pinned loop threads run nothing else, so any other thread has the
// process's mask.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, os.NewSyscallError("sched_getaffinity", err)
	}
	var cpus []int
	for c := 0; c <= config.MaxCPU && len(cpus) < set.Count(); c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("the process may run on no CPU at all")
	}
	return cpus, nil
}

// pin binds the calling thread, the loop's, to the loop's CPU. The
// caller has locked its goroutine to the thread for good.
func (l *loop) pin() error {
	var set unix.CPUSet
	set.Set(l.cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("global.cpu_affinity: pinning event loop %d to CPU %d: %w", l.id, l.cpu, os.NewSyscallError("sched_setaffinity", err))
	}
	l.tid = unix.Gettid()
	return nil
}

// steersByCPU reports whether the running kernel picks a SO_REUSEPORT
// listener by SO_INCOMING_CPU, which Linux does from 6.2 on; earlier
// kernels accept the option and pick by hash alone.
func steersByCPU() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 6, 2)
}

// kernelAtLeast reports whether release (uname -r: "6.18.44-fc",
// "6.2-rc1") is major.minor or later.
func kernelAtLeast(release string, major, minor int) bool {
	maj, rest, ok := leadingInt(release)
	if !ok || !strings.HasPrefix(rest, ".") {
		return false
	}
	mnr, _, ok := leadingInt(rest[1:])
	if !ok {
		return false
	}
	return maj > major || maj == major && mnr >= minor
}

// leadingInt reads the decimal number s starts with.
func leadingInt(s string) (n int, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(s[:i])
	return n, s[i:], err == nil
}
