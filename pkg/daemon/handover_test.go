package daemon

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/testutil"
)

// handshakePair is a SEQPACKET socketpair: the test plays the old process
// on old, the code under test gets the other end.
func handshakePair(t *testing.T) (old, theirs int) {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(pair[0]) })
	return pair[0], pair[1]
}

// expectMsg receives the next message on fd, failing the test unless it
// is of type typ.
func expectMsg(t *testing.T, fd int, typ string) handoverMsg {
	t.Helper()
	m, fds, err := recvMsg(fd, 5*time.Second)
	closeAll(fds)
	if err != nil || m.Type != typ {
		t.Fatalf("got %+v, %v; want a %s message", m, err, typ)
	}
	return m
}

// devNull opens /dev/null: an fd that is no socket.
func devNull(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestHandoverRefusesWhatItCannotUse plays an old process that hands over
// something the new one cannot take: each time the new one fails with the
// reason, tells the old one the same reason, and keeps no fd it received.
func TestHandoverRefusesWhatItCannotUse(t *testing.T) {
	tests := []struct {
		name string
		send func(t *testing.T, fd int) // after the hello
		want string
	}{
		{"another version", func(t *testing.T, fd int) {
			sendMsg(fd, handoverMsg{Type: "sockets", Version: handoverVersion + 1}, nil)
		}, `upgrade handshake: unexpected "sockets" message (version 2, 0 sockets for 0 fds); this binary speaks version 1`},
		{"fds without their sockets", func(t *testing.T, fd int) {
			n := devNull(t)
			defer unix.Close(n)
			sendMsg(fd, handoverMsg{Type: "sockets", Version: handoverVersion, Sockets: []handedSocket{{Kind: kindLock, Lock: "x.lock"}}}, []int{n, n})
		}, `upgrade handshake: unexpected "sockets" message (version 1, 1 sockets for 2 fds); this binary speaks version 1`},
		{"unknown kind", func(t *testing.T, fd int) {
			n := devNull(t)
			defer unix.Close(n)
			sendMsg(fd, handoverMsg{Type: "sockets", Version: handoverVersion, Sockets: []handedSocket{{Kind: "sctp"}}}, []int{n})
		}, `upgrade handshake: unknown socket kind "sctp"`},
		{"bad address", func(t *testing.T, fd int) {
			n := devNull(t)
			defer unix.Close(n)
			sendMsg(fd, handoverMsg{Type: "sockets", Version: handoverVersion, Sockets: []handedSocket{{Kind: kindTCP, Listen: "nowhere"}}}, []int{n})
		}, `upgrade handshake: socket address "nowhere": not an ip:port`},
		{"not JSON", func(t *testing.T, fd int) {
			n := devNull(t)
			defer unix.Close(n)
			unix.Sendmsg(fd, []byte("sockets, please"), unix.UnixRights(n), nil, 0)
		}, "upgrade handshake: invalid character 's' looking for beginning of value"},
		{"the old process gone", func(t *testing.T, fd int) {
			unix.Shutdown(fd, unix.SHUT_WR)
		}, "upgrade handshake: the other process closed the connection"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old, theirs := handshakePair(t)
			before := testutil.OpenFDs(t)
			type result struct {
				h   *Handover
				err error
			}
			done := make(chan result, 1)
			go func() {
				h, err := handoverOn(theirs, os.Getpid())
				done <- result{h, err}
			}()
			if m := expectMsg(t, old, "hello"); m.Version != handoverVersion || m.PID != os.Getpid() || !m.Handoff {
				t.Errorf("hello %+v", m)
			}
			tc.send(t, old)
			r := <-done
			if r.h != nil || r.err == nil || r.err.Error() != tc.want {
				t.Fatalf("handoverOn: %v, %v\nwant %s", r.h, r.err, tc.want)
			}
			if tc.name != "the old process gone" {
				if m := expectMsg(t, old, "error"); m.Error != tc.want {
					t.Errorf("the old process was told %q", m.Error)
				}
			}
			// The handshake socket and every fd received are closed.
			fdsBackTo(t, before-1, "after the refusal (the handshake's closed)")
		})
	}
}

// TestHandoverFromEnv reads the handshake's fd from SPLICER_UPGRADE_FD:
// unset is no upgrade; a value that is not an inherited fd is refused;
// a good one runs the handshake, and is not passed on to children.
func TestHandoverFromEnv(t *testing.T) {
	t.Setenv(handoverEnv, "")
	os.Unsetenv(handoverEnv)
	if h, err := HandoverFromEnv(); h != nil || err != nil {
		t.Errorf("without the variable: %v, %v", h, err)
	}
	for _, v := range []string{"x", "2"} {
		t.Setenv(handoverEnv, v)
		if h, err := HandoverFromEnv(); h != nil || err == nil ||
			err.Error() != "SPLICER_UPGRADE_FD=\""+v+"\" is not an inherited fd" {
			t.Errorf("%s=%s: %v, %v", handoverEnv, v, h, err)
		}
	}
	old, theirs := handshakePair(t)
	t.Setenv(handoverEnv, strconv.Itoa(theirs))
	done := make(chan error, 1)
	var h *Handover
	go func() {
		var err error
		h, err = HandoverFromEnv()
		done <- err
	}()
	expectMsg(t, old, "hello")
	n := devNull(t)
	// The admin port twice: the second wins, the first is closed.
	sendMsg(old, handoverMsg{Type: "sockets", Version: handoverVersion, Sockets: []handedSocket{{Kind: kindAdmin}}, More: true, NextID: 7}, []int{n})
	sendMsg(old, handoverMsg{Type: "sockets", Version: handoverVersion, Sockets: []handedSocket{{Kind: kindAdmin}}, NextID: 5}, []int{n})
	unix.Close(n)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, set := os.LookupEnv(handoverEnv); set {
		t.Error("the variable is still set for children")
	}
	if h.nextID != 7 || h.admin < 0 || h.conn != theirs {
		t.Errorf("handover %+v", h)
	}
	if flags, err := unix.FcntlInt(uintptr(theirs), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("the handshake fd's flags %#x, %v; want close-on-exec", flags, err)
	}
	before := testutil.OpenFDs(t)
	h.close()
	fdsBackTo(t, before-2, "after close (the handshake's and the admin port's)")
}

// TestNewDaemonWithoutConfirmation runs a new daemon whose old process
// says something unexpected, or dies, after "ready": it serves anyway,
// saying so.
func TestNewDaemonWithoutConfirmation(t *testing.T) {
	back := startDemo(t)
	for _, tc := range []struct {
		name string
		end  func(fd int)
		want string
	}{
		{"out of turn", func(fd int) { sendMsg(fd, handoverMsg{Type: "sockets"}, nil) },
			`upgrade handshake: \"sockets\" where conns or done was expected`},
		{"gone", func(fd int) { unix.Shutdown(fd, unix.SHUT_WR) },
			"upgrade handshake: the other process closed the connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, theirs := handshakePair(t)
			var logs testutil.SyncBuffer
			cfg, err := config.New().RuntimeDir(t.TempDir()).AdminListen("").
				Frontend("t").Listen("127.0.0.1:0").Backend(back.Addr().String(), 1).HealthCheck("none").Build()
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				expectMsg(t, old, "hello")
				sendMsg(old, handoverMsg{Type: "sockets", Version: handoverVersion}, nil)
			}()
			h, err := handoverOn(theirs, os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(cfg, zerolog.New(&logs), Options{Handover: h})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			expectMsg(t, old, "ready")
			tc.end(old)
			testutil.WaitFor(t, 5*time.Second, "the daemon serving", d.serving.Load)
			if g := greeting(t, frontAddr(t, d)); !strings.HasPrefix(g, "hello from demo backend") {
				t.Errorf("greeting %q", g)
			}
			want := `"error":"` + tc.want + `","message":"upgrade: the old process did not confirm the hand-over; serving anyway"`
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %s:\n%s", want, logs.String())
			}
		})
	}
}

// TestHandoverOldProcessGone: the old process closes the handshake at each
// point the new one writes: before the hello, before "ready", before
// "adopted". The new one fails with a broken pipe each time; what it
// adopted before is still counted.
func TestHandoverOldProcessGone(t *testing.T) {
	const broken = "upgrade handshake: sendmsg: broken pipe"
	old, theirs := handshakePair(t)
	unix.Close(old)
	if h, err := handoverOn(theirs, os.Getpid()); h != nil || err == nil || err.Error() != broken {
		t.Errorf("hello to a gone process: %v, %v", h, err)
	}

	handed := func(t *testing.T) (int, *Handover) {
		t.Helper()
		old, theirs := handshakePair(t)
		go func() {
			expectMsg(t, old, "hello")
			sendMsg(old, handoverMsg{Type: "sockets", Version: handoverVersion}, nil)
		}()
		h, err := handoverOn(theirs, os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		return old, h
	}
	adopt := func(recs []l4.HandoffRecord, fds []int) l4.HandoffStats {
		closeAll(fds)
		return l4.HandoffStats{TCP: len(recs)}
	}

	old, h := handed(t)
	unix.Shutdown(old, unix.SHUT_RDWR)
	if st, err := h.ready(adopt); err == nil || err.Error() != broken || st != (l4.HandoffStats{}) {
		t.Errorf("ready to a gone process: %+v, %v", st, err)
	}

	old, h = handed(t)
	go func() {
		expectMsg(t, old, "ready")
		sendMsg(old, handoverMsg{Type: "conns", Conns: make([]l4.HandoffRecord, 2), More: true}, nil)
		sendMsg(old, handoverMsg{Type: "conns", Conns: make([]l4.HandoffRecord, 1)}, nil)
		unix.Shutdown(old, unix.SHUT_RDWR)
	}()
	// The old process goes away either before the answer is sent (broken
	// pipe) or after, while "done" is awaited (closed): either way what
	// was adopted is kept.
	if st, err := h.ready(adopt); err == nil || (err.Error() != broken && !errors.Is(err, errPeerGone)) || st != (l4.HandoffStats{TCP: 3}) {
		t.Errorf("adopted, to a gone process: %+v, %v", st, err)
	}
}
