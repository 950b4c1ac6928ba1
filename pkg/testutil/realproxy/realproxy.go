package realproxy

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

// startTimeout bounds a proxy's start, up to its listeners accepting.
const startTimeout = 10 * time.Second

// FreePort returns a loopback address whose port nothing listens on now,
// for a proxy that must be told its port.
func FreePort(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// HAProxy runs haproxy in the foreground with the given configuration
// text, and returns once every address in listening accepts connections.
// The test's cleanup stops it. Without haproxy the test is skipped.
func HAProxy(t testing.TB, config string, listening ...netip.AddrPort) {
	t.Helper()
	testutil.SkipShort(t, "HAProxy")
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("install haproxy (Debian package haproxy) to run this interop test")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// -db: stay in the foreground, so the process started is the one serving.
	run(t, bin, []string{"-db", "-f", path}, listening)
}

// Nginx runs nginx in the foreground with a stream block (the text inside
// "stream { }"), and returns once every address in listening accepts
// connections. The test's cleanup stops it. Without nginx, or without its
// stream module, the test is skipped.
func Nginx(t testing.TB, stream string, listening ...netip.AddrPort) {
	t.Helper()
	testutil.SkipShort(t, "nginx")
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("install nginx (Debian packages nginx and libnginx-mod-stream) to run this interop test")
	}
	module, ok := streamModule(bin)
	if !ok {
		t.Skip("nginx lacks the stream module: install Debian package libnginx-mod-stream to run this interop test")
	}
	dir := t.TempDir()
	var b strings.Builder
	if module != "" {
		fmt.Fprintf(&b, "load_module %s;\n", module)
	}
	fmt.Fprintf(&b, `worker_processes 1;
pid %s;
error_log stderr warn;
events {
    worker_connections 64;
}
stream {
%s
}
`, filepath.Join(dir, "nginx.pid"), stream)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, bin, []string{"-p", dir + "/", "-c", path, "-e", "stderr", "-g", "daemon off;"}, listening)
}

// streamModule finds nginx's stream module: "" when it is built in, the
// dynamic module's path otherwise; false when there is none.
func streamModule(bin string) (string, bool) {
	out, _ := exec.Command(bin, "-V").CombinedOutput()
	modules := "/usr/lib/nginx/modules"
	dynamic := false
	for _, arg := range strings.Fields(string(out)) {
		switch {
		case arg == "--with-stream":
			return "", true
		case arg == "--with-stream=dynamic":
			dynamic = true
		case strings.HasPrefix(arg, "--modules-path="):
			modules = strings.TrimPrefix(arg, "--modules-path=")
		}
	}
	path := filepath.Join(modules, "ngx_stream_module.so")
	if _, err := os.Stat(path); !dynamic || err != nil {
		return "", false
	}
	return path, true
}

// run starts bin with args, stops it at cleanup (SIGTERM, then SIGKILL),
// and waits until every address in listening accepts a connection. Its
// output is kept and shown when it fails to start or the test fails.
func run(t testing.TB, bin string, args []string, listening []netip.AddrPort) {
	t.Helper()
	var out testutil.SyncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		// The process group: nginx's worker goes with its master.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), bytes.TrimSpace([]byte(out.String())))
		}
	})
	deadline := time.Now().Add(startTimeout)
	for _, addr := range listening {
		for {
			c, err := net.DialTimeout("tcp", addr.String(), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				t.Fatalf("%s exited at start:\n%s", filepath.Base(bin), out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not listening on %v after %v:\n%s", filepath.Base(bin), addr, startTimeout, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
