package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxCPU is the highest CPU number global.cpu_affinity may name: the size
// of the kernel CPU mask that sched_setaffinity is given (CPU_SETSIZE).
const MaxCPU = 1023

// CPUAffinity is global.cpu_affinity: which CPU each event loop's thread
// runs on. The zero value pins nothing. The daemon checks the CPUs against
// the ones the process may run on when it starts (l4.Server.Start), since
// that depends on the machine and on how the process was started (taskset,
// systemd's CPUAffinity=, a cgroup cpuset), not on the file.
type CPUAffinity struct {
	// Auto pins loop i to the i-th CPU the process may run on, in
	// ascending order, wrapping round when there are more loops than
	// CPUs: "auto", as nginx's worker_cpu_affinity auto.
	Auto bool
	// CPUs, when not empty, gives each loop its CPU: loop i runs on
	// CPUs[i]. It holds one distinct CPU per worker.
	CPUs []int
}

// Enabled reports whether event loops are pinned.
func (a CPUAffinity) Enabled() bool { return a.Auto || len(a.CPUs) > 0 }

// String is the setting as an operator writes it: "", "auto" or a CPU
// list such as "0-3,8".
func (a CPUAffinity) String() string {
	if a.Auto {
		return "auto"
	}
	return FormatCPUList(a.CPUs)
}

// parseCPUAffinity reads the value of global.cpu_affinity.
func parseCPUAffinity(s string) (CPUAffinity, error) {
	switch strings.TrimSpace(s) {
	case "":
		return CPUAffinity{}, nil
	case "auto":
		return CPUAffinity{Auto: true}, nil
	}
	cpus, err := ParseCPUList(s)
	if err != nil {
		return CPUAffinity{}, err
	}
	return CPUAffinity{CPUs: cpus}, nil
}

// ParseCPUList reads a CPU list in the kernel's format (cpuset(7), the
// Cpus_allowed_list of /proc/PID/status, taskset -c): CPU numbers and
// inclusive ranges separated by commas, such as "0-3,8,10-11". The CPUs
// come back in the order written; a CPU listed twice is an error.
func ParseCPUList(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := cpuNumber(lo, s)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = cpuNumber(hi, s); err != nil {
				return nil, err
			}
			if last < first {
				return nil, fmt.Errorf("CPU range %q in %q runs backwards; write the lower CPU first", part, s)
			}
		}
		for c := first; c <= last; c++ {
			if slices.Contains(cpus, c) {
				return nil, fmt.Errorf("CPU %d is listed twice in %q; give each worker its own CPU", c, s)
			}
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// cpuNumber reads one CPU number of list.
func cpuNumber(s, list string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf(`invalid CPU list %q: write CPU numbers and ranges such as "0-3,8", or "auto"`, list)
	}
	if n > MaxCPU {
		return 0, fmt.Errorf("CPU %d in %q is above %d, the highest CPU number splicer can pin to", n, list, MaxCPU)
	}
	return n, nil
}

// FormatCPUList writes cpus in the kernel's list format, ranges folded:
// [0 1 2 3 8] is "0-3,8". The order is kept: only consecutive ascending
// runs fold.
func FormatCPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// resolveCPUAffinity reads global.cpu_affinity and checks it against the
// number of workers: a CPU list gives one CPU per worker, and with workers
// left at 0 (one per CPU) it sets their number.
func resolveCPUAffinity(g *Global, r *rawGlobal, sc scope) {
	spec := get(sc, "cpu_affinity", r.CPUAffinity, "")
	a, err := parseCPUAffinity(spec)
	if err != nil {
		sc.addf("cpu_affinity", "%v", err)
		return
	}
	g.CPUAffinity = a
	switch n := len(a.CPUs); {
	case n == 0:
	case g.Workers == 0:
		g.Workers = n
	case g.Workers != n:
		sc.addf("cpu_affinity", "lists %d CPUs for %d workers: list one CPU per worker, leave workers at 0 to run one per CPU listed, or write \"auto\"", n, g.Workers)
	}
}
