package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the utime and stime fields of /proc/PID/stat. The
// kernel fixes USER_HZ at 100 on every architecture Go supports, whatever
// the internal tick rate, so it is a constant rather than a sysconf call.
const userHZ = 100

// usage is what a process tree has consumed or holds at one instant.
type usage struct {
	cpu time.Duration // user + system CPU time since the processes started
	rss int64         // resident set size in bytes (VmRSS)
	fds int           // open file descriptors
}

// sub returns u - v, field by field.
func (u usage) sub(v usage) usage {
	return usage{cpu: u.cpu - v.cpu, rss: u.rss - v.rss, fds: u.fds - v.fds}
}

// sampleTree sums usage over root and all its descendants, because nginx
// does its work in worker processes forked by the master we started.
func sampleTree(root int) (usage, error) {
	pids, err := processTree(root)
	if err != nil {
		return usage{}, err
	}
	var total usage
	for _, pid := range pids {
		u, err := sampleProcess(pid)
		if err != nil {
			return usage{}, err
		}
		total.cpu += u.cpu
		total.rss += u.rss
		total.fds += u.fds
	}
	return total, nil
}

// sampleProcess reads one process's CPU time, RSS and fd count from /proc.
func sampleProcess(pid int) (usage, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return usage{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	st, err := parseStat(stat)
	if err != nil {
		return usage{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return usage{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	rssKB, err := kiloField(status, "VmRSS:")
	if err != nil {
		return usage{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return usage{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	cpu := time.Duration(st.ticks) * time.Second / userHZ
	return usage{cpu: cpu, rss: rssKB * 1024, fds: len(fds)}, nil
}

// procStat holds the fields of /proc/PID/stat the harness uses.
type procStat struct {
	ppid  int
	ticks int64 // utime + stime, in USER_HZ ticks
}

// parseStat parses a /proc/PID/stat line. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("malformed stat %q", b)
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("short stat %q", b)
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, fmt.Errorf("malformed stat %q", b)
	}
	return procStat{ppid: ppid, ticks: utime + stime}, nil
}

// processTree returns root followed by all its live descendants, found by
// scanning the parent PID of every process in /proc.
func processTree(root int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := make(map[int][]int)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process directory
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // the process ended while we looked
		}
		st, err := parseStat(b)
		if err != nil {
			return nil, err
		}
		children[st.ppid] = append(children[st.ppid], pid)
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, nil
}

// kernelSlab returns the kernel's slab memory in bytes (Slab in
// /proc/meminfo). Socket, file and epoll structures of every connection live
// there; it is system-wide, so other activity on the machine adds noise.
func kernelSlab() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read kernel memory: %w", err)
	}
	kb, err := kiloField(b, "Slab:")
	if err != nil {
		return 0, fmt.Errorf("read kernel memory: %w", err)
	}
	return kb * 1024, nil
}

// kiloField finds the line "name   N kB" in a /proc status-style file and
// returns N.
func kiloField(b []byte, name string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("malformed %s line %q", name, sc.Text())
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s line: %w", name, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("no %s line", name)
}
