package daemon

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
)

// Capability bits of /proc/self/status' CapEff (linux/capability.h).
const (
	capNetAdmin    = 12
	capSysResource = 24
)

// HostEnvironment reads what this host allows this process: the open-file
// limit, the pipe and socket buffer sysctls, the capabilities that lift
// them, and the interface addresses. What cannot be read is left zero,
// which checks nothing. config.LoadIn warns against it.
func HostEnvironment() config.Environment {
	var env config.Environment
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		env.NoFile = rl.Cur
	}
	env.PipeMaxSize = sysctlInt("/proc/sys/fs/pipe-max-size")
	env.RmemMax = sysctlInt("/proc/sys/net/core/rmem_max")
	if caps, ok := effectiveCaps(); ok {
		env.CapNetAdmin = caps&(1<<capNetAdmin) != 0
		env.CapSysResource = caps&(1<<capSysResource) != 0
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				env.LocalAddrs = append(env.LocalAddrs, p.Addr().Unmap())
			}
		}
	}
	return env
}

// sysctlInt reads a numeric sysctl from its /proc/sys file; 0 if it
// cannot.
func sysctlInt(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}

// effectiveCaps reads the process's effective capability set.
func effectiveCaps() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n, err == nil
		}
	}
	return 0, false
}
