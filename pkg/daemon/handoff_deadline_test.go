package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/config"
)

// TestHandoverDeadlineKeepsTheConnections hands connections to a new
// process that has stopped reading (its socket's queue is full): the old
// process gives up at the hand-over's deadline instead of blocking in
// sendmsg, takes back the batch it could not send, and keeps serving
// every connection; none is reset or lost.
func TestHandoverDeadlineKeepsTheConnections(t *testing.T) {
	back := startDemo(t) // greets each client, then echoes
	cfg, err := config.New().AdminListen("").Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, cfg)
	front := frontAddr(t, d)
	const n = 20
	var clients []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", front, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second))
		clients = append(clients, c)
		if _, err := bufio.NewReader(io.LimitReader(c, 1<<10)).ReadString('\n'); err != nil {
			t.Fatalf("greeting: %v", err)
		}
		echoLine(t, c, fmt.Sprintf("before %d", i))
	}

	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(pair[0]); unix.Close(pair[1]) })
	// The new process reads nothing: fill its queue until a send would block.
	for i := 0; ; i++ {
		err := unix.Sendmsg(pair[0], []byte("x"), nil, nil, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil || i > 1<<20 {
			t.Fatalf("filling the queue: %v after %d messages", err, i)
		}
	}

	const timeout = 300 * time.Millisecond
	start := time.Now()
	d.handConnections(pair[0], timeout)
	if took := time.Since(start); took < timeout || took > 2*timeout+time.Second {
		t.Errorf("the hand-over took %v with a deadline of %v", took, timeout)
	}
	if got := d.srv.ActiveConnections(); got != n {
		t.Errorf("the old process holds %d connections, want all %d", got, n)
	}
	for i, c := range clients {
		echoLine(t, c, fmt.Sprintf("after %d", i))
	}
}

// echoLine writes msg to c and reads it back.
func echoLine(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("%q: %v", msg, err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, buf, err)
	}
}
