package l4

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sendUrgent sends b as TCP urgent data (MSG_OOB) on c.
func sendUrgent(c *net.TCPConn, b byte) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	if err := raw.Control(func(fd uintptr) { err = unix.Send(int(fd), []byte{b}, unix.MSG_OOB) }); err != nil {
		return err
	}
	return err
}

// oobInline makes c receive urgent data in its place in the stream.
func oobInline(c *net.TCPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	if err := raw.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_OOBINLINE, 1) }); err != nil {
		return err
	}
	return err
}

// TestUrgentDataDoesNotStall: a client that sends one urgent byte (telnet's
// interrupt, FTP's ABOR) in the middle of its stream, after a small
// message and after a bulk transfer that the relay splices: the relay
// neither stalls at the urgent mark nor loses the byte, which reaches the
// backend inline, in its place; and the same from the backend's side.
func TestUrgentDataDoesNotStall(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []byte
	}{
		{"after a message", []byte("abc")},
		{"after a bulk transfer", randomBlock(4<<20, 31)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after := []byte("def after the urgent byte")
			want := append(append(append([]byte(nil), tc.before...), 'U'), after...)
			got := make(chan []byte, 1)
			b := startBackend(t, func(c net.Conn) {
				defer c.Close()
				if err := oobInline(c.(*net.TCPConn)); err != nil {
					t.Error(err)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, len(want))
				n, _ := io.ReadFull(c, buf)
				got <- buf[:n]
				// And back: the same stream, urgent byte included.
				c.Write(tc.before)
				if err := sendUrgent(c.(*net.TCPConn), 'U'); err != nil {
					t.Error(err)
				}
				c.Write(after)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
			})
			s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
			c := dialFE(t, s)
			if err := oobInline(c); err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			back := make(chan []byte, 1)
			go func() {
				all, _ := io.ReadAll(c)
				back <- all
			}()
			if _, err := c.Write(tc.before); err != nil {
				t.Fatal(err)
			}
			if err := sendUrgent(c, 'U'); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(after); err != nil {
				t.Fatal(err)
			}
			select {
			case g := <-got:
				if !bytes.Equal(g, want) {
					t.Fatalf("backend got %d bytes, want %d (equal prefix %v)", len(g), len(want), bytes.Equal(g, want[:len(g)]))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the stream stalled at the urgent byte")
			}
			// The backend's FIN comes first: the client half-closes only
			// once it has read everything back, so the end is backend_fin.
			if g := <-back; !bytes.Equal(g, want) {
				t.Fatalf("client got %d bytes back, want %d (equal prefix %v)", len(g), len(want), bytes.Equal(g, want[:min(len(g), len(want))]))
			}
			c.CloseWrite()
			causes := waitCause(t, s, CauseBackendFIN, 1)
			causes[CauseBackendFIN] = 0
			if causes != [NumCauses]uint64{} {
				t.Errorf("other causes counted:%s", causeCounts(causes))
			}
		})
	}
}
