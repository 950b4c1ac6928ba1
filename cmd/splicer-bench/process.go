package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a child gets to exit after SIGTERM before its whole
// process group is killed.
const stopGrace = 10 * time.Second

// process is a child the harness started. The harness signals only these,
// by PID (or by the process group it created for the child), never by name.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when the child has been reaped
	err  error         // Wait's result; read only after done is closed
}

// startProcess starts argv in its own process group, so that a Ctrl-C in the
// terminal reaches only the harness, which then stops its children in order.
// Pdeathsig kills the child should the harness die without cleaning up.
func startProcess(name string, argv []string, env []string) (*process, error) {
	return startProcessAs(name, argv, env, nil)
}

// startProcessAs is startProcess running the child as cred, when not nil.
func startProcessAs(name string, argv []string, env []string, cred *syscall.Credential) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out := &tailBuffer{max: 4096}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if cred != nil {
		cmd.Dir = os.TempDir() // the harness's directory may be closed to cred
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go p.reap()
	return p, nil
}

// reap waits for the child so that it never lingers as a zombie.
func (p *process) reap() {
	p.err = p.cmd.Wait()
	close(p.done)
}

// pid is the child's process ID.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the child has already ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the child: SIGTERM, then after stopGrace SIGKILL to its process
// group (which also takes worker processes a master left behind). It is safe
// to call on a child that has already exited.
func (p *process) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// failure describes why the child is unusable, with the tail of its output,
// which is where haproxy, nginx and splicer explain a bad config or a port
// in use.
func (p *process) failure(cause error) error {
	status := "still running"
	if p.exited() {
		status = fmt.Sprintf("exited: %v", p.err)
	}
	tail := strings.TrimSpace(p.out.String())
	if tail == "" {
		tail = "(no output)"
	}
	return fmt.Errorf("%s (%s): %w\n  output tail:\n    %s", p.name, status, cause,
		strings.ReplaceAll(tail, "\n", "\n    "))
}

// waitListening polls /proc/net/tcp (network "tcp") or /proc/net/udp
// ("udp") until every port is ready on 127.0.0.1, without sending anything:
// a probe connection would count as a test run in an iperf3 server. It
// fails as soon as the child exits.
func (p *process) waitListening(ctx context.Context, timeout time.Duration, network string, ports ...int) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		open, err := listeningPorts(network)
		if err != nil {
			return err
		}
		missing := 0
		for _, port := range ports {
			if !open[port] {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		select {
		case <-p.done:
			return p.failure(errors.New("exited before listening"))
		case <-ctx.Done():
			return p.failure(fmt.Errorf("not listening on %s ports %v: %w", network, ports, ctx.Err()))
		case <-tick.C:
		}
	}
}

// Socket states in /proc/net/{tcp,udp} of a socket ready for clients.
const (
	stateListen  = "0A" // TCP LISTEN
	stateUnbound = "07" // UDP bound and unconnected (TCP_CLOSE in the kernel's names)
)

// listeningPorts returns the ports of network ("tcp" or "udp") ready for
// clients on 127.0.0.1 or on the IPv4 wildcard: TCP sockets in LISTEN
// state, UDP sockets bound and not connected.
func listeningPorts(network string) (map[int]bool, error) {
	state := stateListen
	if network == string(suiteUDP) {
		state = stateUnbound
	}
	path := "/proc/net/" + network
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read listening sockets: %w", err)
	}
	defer f.Close()
	open, err := parseListening(bufio.NewScanner(f), state)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return open, nil
}

// parseListening reads the /proc/net/tcp and /proc/net/udp format: "sl
// local_address rem_address st ...", addresses as little-endian hex IP and
// big-endian hex port, st the socket state in hex; it returns the local
// ports of the sockets in state.
func parseListening(sc *bufio.Scanner, state string) (map[int]bool, error) {
	open := make(map[int]bool)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != state {
			continue
		}
		ip, port, ok := strings.Cut(f[1], ":")
		if !ok || (ip != "0100007F" && ip != "00000000") {
			continue
		}
		n, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("parse port %q: %w", port, err)
		}
		open[int(n)] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return open, nil
}

// freePorts asks the kernel for n distinct unused loopback ports of
// network ("tcp" or "udp"), holding each until all are found so that none
// is handed out twice. Another process may still take one before the child
// binds it; the child then fails to start, and says so in its output.
func freePorts(network string, n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		c, port, err := bindLoopback(network)
		if err != nil {
			return nil, fmt.Errorf("find a free %s port: %w", network, err)
		}
		defer c.Close()
		ports[i] = port
	}
	return ports, nil
}

// bindLoopback binds a socket of network to a port the kernel picks on
// 127.0.0.1 and returns it with the port.
func bindLoopback(network string) (io.Closer, int, error) {
	lo := net.IPv4(127, 0, 0, 1)
	if network == string(suiteUDP) {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: lo})
		if err != nil {
			return nil, 0, err
		}
		return c, c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: lo})
	if err != nil {
		return nil, 0, err
	}
	return ln, ln.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it: enough of a child's
// output to explain a failure, bounded however chatty the child is.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write keeps p and drops whatever falls out of the window; it never fails.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the bytes kept so far.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
