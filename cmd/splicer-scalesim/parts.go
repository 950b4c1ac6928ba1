package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// backendCount is how many backends the DNS records list.
const backendCount = 10

// srvName is the SRV name the instances discover their backends by.
const srvName = "_pg._tcp.sim.test"

// backendName is the name backend i (from 0) answers with.
func backendName(i int) string { return fmt.Sprintf("b%d", i+1) }

// backends are the simulation's backend servers: one listener per backend
// address, in the backends' namespace, served by this process. A client
// gets one line, "NAME PEER": the backend's name and the address the
// connection came from (the splicer instance's), then an echo of what it
// sends.
type backends struct {
	lns   []net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func startBackends(ns string) (*backends, error) {
	b := &backends{conns: make(map[net.Conn]bool)}
	for i := range backendCount {
		var ln net.Listener
		err := inNS(ns, func() error {
			var err error
			ln, err = net.Listen("tcp", netip.AddrPortFrom(backendAddr(i), servicePort).String())
			return err
		})
		if err != nil {
			b.close()
			return nil, err
		}
		b.lns = append(b.lns, ln)
		b.wg.Go(func() { b.serve(ln, backendName(i)) })
	}
	return b, nil
}

func (b *backends) serve(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		b.wg.Go(func() {
			defer func() {
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				c.Close()
			}()
			peer := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
			if _, err := fmt.Fprintf(c, "%s %s\n", name, peer); err != nil {
				return
			}
			io.Copy(c, c)
		})
	}
}

// close stops the listeners and every connection, and waits.
func (b *backends) close() {
	for _, ln := range b.lns {
		ln.Close()
	}
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// dnsServer is a dnsmasq in the backends' namespace serving the SRV
// records of the backends, restarted to change them.
type dnsServer struct {
	ns, dir string
	cmd     *exec.Cmd
	done    chan struct{}
}

// set makes dnsmasq serve SRV records for the backends listed (indexes
// from 0), with a TTL of 1 s, and waits until it listens.
func (d *dnsServer) set(list []int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "port=53\nlisten-address=%s\nbind-interfaces\nno-resolv\nno-hosts\nno-poll\npid-file=\nuser=root\n", dnsAddr)
	b.WriteString("local=/sim.test/\nlocal-ttl=1\n")
	for _, i := range list {
		fmt.Fprintf(&b, "host-record=%s.sim.test,%s\n", backendName(i), backendAddr(i))
		fmt.Fprintf(&b, "srv-host=%s,%s.sim.test,%d,0,1\n", srvName, backendName(i), servicePort)
	}
	conf := filepath.Join(d.dir, "dnsmasq.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return err
	}
	d.stop()
	log, err := os.Create(filepath.Join(d.dir, "dnsmasq.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command("ip", "netns", "exec", d.ns, "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file="+conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmd, d.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(d.done)
	var last error
	err = waitUntil(10*time.Second, "dnsmasq to listen", func() bool {
		last = inNS(d.ns, func() error {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(dnsAddr, 53).String(), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		return last == nil
	})
	if err != nil {
		out, _ := os.ReadFile(filepath.Join(d.dir, "dnsmasq.log"))
		return fmt.Errorf("%w (last: %v); dnsmasq said:\n%s", err, last, out)
	}
	return nil
}

// stop ends dnsmasq, if it runs.
func (d *dnsServer) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
}

// instance is one splicer process in its namespace.
type instance struct {
	n    int
	ns   string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
	http *http.Client
}

// startInstance runs `splicer run -c config` in namespace ns (ip netns
// exec execs splicer itself, so the PID is splicer's).
func startInstance(n int, ns, splicer, config, dir string) (*instance, error) {
	runtime := filepath.Join(dir, fmt.Sprintf("run-lb%d", n))
	if err := os.MkdirAll(runtime, 0o750); err != nil {
		return nil, err
	}
	log := filepath.Join(dir, fmt.Sprintf("lb%d.log", n))
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command("ip", "netns", "exec", ns, splicer, "run", "-c", config)
	// The same config for every instance: what differs (the runtime
	// directory of the listener locks) comes from the environment, as
	// under systemd.
	cmd.Env = append(os.Environ(), "RUNTIME_DIRECTORY="+runtime)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	in := &instance{n: n, ns: ns, cmd: cmd, done: make(chan struct{}), log: log}
	go func() { cmd.Wait(); close(in.done) }()
	in.http = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNS(ns, func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	return in, nil
}

// frontendState is what the simulation reads of an instance's stats.
type frontendState struct {
	Strategy string
	Backends []string
}

// state asks the instance's admin port (127.0.0.1:9090 in its namespace,
// read-only without users) for its frontend's strategy and backends.
func (in *instance) state() (frontendState, error) {
	select {
	case <-in.done:
		out, _ := os.ReadFile(in.log)
		return frontendState{}, fmt.Errorf("lb%d exited: %s", in.n, tail(string(out), 2000))
	default:
	}
	resp, err := in.http.Get("http://127.0.0.1:9090/api/v1/stats")
	if err != nil {
		return frontendState{}, err
	}
	defer resp.Body.Close()
	var st struct {
		Frontends []struct {
			Strategy string `json:"strategy"`
			Backends []struct {
				Name  string `json:"name"`
				State string `json:"state"`
			} `json:"backends"`
		} `json:"frontends"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return frontendState{}, err
	}
	if len(st.Frontends) != 1 {
		return frontendState{}, errors.New("no frontend in the stats")
	}
	out := frontendState{Strategy: st.Frontends[0].Strategy}
	for _, b := range st.Frontends[0].Backends {
		out.Backends = append(out.Backends, b.Name)
	}
	return out, nil
}

// signal sends sig to the instance.
func (in *instance) signal(sig syscall.Signal) error { return in.cmd.Process.Signal(sig) }

// stop ends the instance: SIGTERM, then SIGKILL after 10 s.
func (in *instance) stop() {
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		in.cmd.Process.Kill()
		<-in.done
	}
}

// answer is what one client connection found: the backend that greeted
// it and the instance it came through.
type answer struct {
	backend  string
	instance int
}

// readGreeting reads a backend's "NAME PEER" line.
func readGreeting(r *bufio.Reader) (answer, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return answer{}, err
	}
	name, peer, ok := strings.Cut(strings.TrimSpace(line), " ")
	ip, perr := netip.ParseAddr(peer)
	if !ok || perr != nil || !ip.Is4() {
		return answer{}, fmt.Errorf("greeting %q", line)
	}
	return answer{backend: name, instance: int(ip.As4()[2])}, nil
}

// prober makes client connections from the client namespace.
type prober struct {
	ns      string
	workers int
}

// ask connects once from each of n clients to target(i), reads which
// backend answered and through which instance, and closes.
func (p *prober) ask(n int, target func(i int) netip.AddrPort) ([]answer, error) {
	out := make([]answer, n)
	jobs := make(chan int)
	var (
		mu    sync.Mutex
		first error
		fails int
		wg    sync.WaitGroup
	)
	for range p.workers {
		wg.Go(func() {
			err := inNS(p.ns, func() error {
				for i := range jobs {
					a, err := connectOnce(clientAddr(i), target(i))
					if err != nil {
						mu.Lock()
						if first == nil {
							first = fmt.Errorf("client %v to %v: %w", clientAddr(i), target(i), err)
						}
						fails++
						mu.Unlock()
					}
					out[i] = a
				}
				return nil
			})
			if err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
				for range jobs {
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if first != nil {
		return out, fmt.Errorf("%d of %d connections failed, first: %w", fails, n, first)
	}
	return out, nil
}

func connectOnce(from netip.Addr, to netip.AddrPort) (answer, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		return answer{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return readGreeting(bufio.NewReader(c))
}

// heldConn is a long-lived client connection through the virtual IP.
type heldConn struct {
	client int
	c      net.Conn
	r      *bufio.Reader
	answer
}

// hold opens one connection from each of the n clients from first on to
// the virtual IP and keeps them.
func (p *prober) hold(first, n int) ([]*heldConn, error) {
	out := make([]*heldConn, 0, n)
	err := inNS(p.ns, func() error {
		for i := first; i < first+n; i++ {
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(clientAddr(i), 0))}
			c, err := d.Dial("tcp", netip.AddrPortFrom(vip, servicePort).String())
			if err != nil {
				return fmt.Errorf("client %v: %w", clientAddr(i), err)
			}
			h := &heldConn{client: i, c: c, r: bufio.NewReader(c)}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if h.answer, err = readGreeting(h.r); err != nil {
				c.Close()
				return fmt.Errorf("client %v: %w", clientAddr(i), err)
			}
			out = append(out, h)
		}
		return nil
	})
	if err != nil {
		closeAll(out)
		return nil, err
	}
	return out, nil
}

// ping reports whether the connection still carries bytes both ways.
func (h *heldConn) ping() bool {
	h.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := h.c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := h.r.ReadString('\n')
	return err == nil && line == "ping\n"
}

func closeAll(hs []*heldConn) {
	for _, h := range hs {
		h.c.Close()
	}
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// waitUntil polls cond every 50 ms for up to d.
func waitUntil(d time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// pct formats a share.
func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 2, 64) + "%"
}
