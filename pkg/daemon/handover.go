package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/l4"
)

// The upgrade handshake. The old process starts the new binary with one
// end of a SOCK_SEQPACKET socketpair as fd 3 (named by SPLICER_UPGRADE_FD)
// and they exchange JSON messages, the listening sockets riding along as
// SCM_RIGHTS:
//
//	new -> old  hello   {version, pid, handoff}
//	old -> new  sockets {version, sockets, more, next_id}  + fds, as many as needed
//	new -> old  ready   {pid}       or  error {error}
//	old -> new  conns   {conns, more}  + fds, as many as needed (hand-over)
//	new -> old  adopted {adopted}       (after the conns message without more)
//	old -> new  done                (the old process has let go)
//
// The conns exchange happens when the new process said it can adopt
// (hello's handoff) and the old one's config asks for it (upgrade.handoff):
// each relayed connection, client not yet connected and UDP flow goes over
// with its sockets and an l4.HandoffRecord, versioned on its own.
//
// A version other than handoverVersion on either side fails the upgrade,
// and the old process serves on. So does any error, an exit of the new
// process, or upgradeTimeout passing before ready.

const (
	// handoverVersion is the version of the handshake above.
	handoverVersion = 1
	// handoverEnv names the fd of the handshake socket in the new process.
	handoverEnv = "SPLICER_UPGRADE_FD"
	// fdsPerMessage stays below the kernel's SCM_MAX_FD (253).
	fdsPerMessage = 200
	// maxMessage bounds one handshake message.
	maxMessage = 1 << 20
)

// Kinds of handed sockets.
const (
	kindTCP   = "tcp"
	kindUDP   = "udp"
	kindAdmin = "admin"
	kindLock  = "lock"
)

// handoverMsg is one handshake message.
type handoverMsg struct {
	Type    string         `json:"type"` // hello, sockets, ready, error, done
	Version int            `json:"version,omitempty"`
	PID     int            `json:"pid,omitempty"`
	Error   string         `json:"error,omitempty"`
	Sockets []handedSocket `json:"sockets,omitempty"` // the fds of this message, in order
	More    bool           `json:"more,omitempty"`    // another message of the same type follows
	// Handoff (hello) says the new process adopts handed-over connections.
	Handoff bool `json:"handoff,omitempty"`
	// NextID (sockets) is where the new process's connection IDs start:
	// after the old one's, so adopted connections keep theirs.
	NextID uint64 `json:"next_id,omitempty"`
	// Conns (conns) are the records of this message's fds, in order.
	Conns []l4.HandoffRecord `json:"conns,omitempty"`
	// Adopted (adopted) is what the new process made of them.
	Adopted *l4.HandoffStats `json:"adopted,omitempty"`
}

// handedSocket describes one fd handed over.
type handedSocket struct {
	Kind      string `json:"kind"`
	Listen    string `json:"listen,omitempty"`   // tcp, udp: the configured address
	Frontend  string `json:"frontend,omitempty"` // tcp, udp: for a port 0 address
	Index     int    `json:"index,omitempty"`
	Lock      string `json:"lock,omitempty"` // lock: the file name
	Exclusive bool   `json:"exclusive,omitempty"`
}

// sendMsg sends m with fds attached.
func sendMsg(fd int, m handoverMsg, fds []int) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		err = unix.Sendmsg(fd, data, oob, nil, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("upgrade handshake: %w", os.NewSyscallError("sendmsg", err))
	}
	return nil
}

// sendMsgBy is sendMsg that gives up at deadline (a peer that stopped
// reading fills the socket's buffer): the message is then not sent.
func sendMsgBy(fd int, m handoverMsg, fds []int, deadline time.Time) error {
	left := time.Until(deadline)
	if left <= 0 {
		return errors.New("upgrade handshake: the hand-over's deadline passed")
	}
	tv := unix.NsecToTimeval(max(left, time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	err := sendMsg(fd, m, fds)
	if errors.Is(err, unix.EAGAIN) {
		return errors.New("upgrade handshake: the new process took no message within the hand-over's deadline")
	}
	return err
}

// errPeerGone is a handshake socket closed by the other side.
var errPeerGone = errors.New("upgrade handshake: the other process closed the connection")

// recvMsg receives one message and its fds within timeout.
func recvMsg(fd int, timeout time.Duration) (handoverMsg, []int, error) {
	var m handoverMsg
	tv := unix.NsecToTimeval(max(timeout, time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return m, nil, os.NewSyscallError("setsockopt", err)
	}
	buf := make([]byte, maxMessage)
	oob := make([]byte, unix.CmsgSpace(4*(fdsPerMessage+16)))
	var n, oobn, flags int
	var err error
	for {
		n, oobn, flags, _, err = unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case errors.Is(err, unix.EAGAIN):
		return m, nil, fmt.Errorf("upgrade handshake: no answer within %v", timeout)
	case err != nil:
		return m, nil, fmt.Errorf("upgrade handshake: %w", os.NewSyscallError("recvmsg", err))
	}
	fds, perr := parseRights(oob[:oobn])
	switch {
	case perr != nil:
		closeAll(fds)
		return m, nil, perr
	case n == 0:
		closeAll(fds)
		return m, nil, errPeerGone
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
		closeAll(fds)
		return m, nil, errors.New("upgrade handshake: message truncated")
	}
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		closeAll(fds)
		return m, nil, fmt.Errorf("upgrade handshake: %w", err)
	}
	return m, fds, nil
}

// parseRights returns the fds of an SCM_RIGHTS control message.
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("upgrade handshake: %w", err)
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("upgrade handshake: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Handover is the new process's side of an upgrade: the sockets, the
// admin listener and the listener locks the old process handed over, and
// the handshake to finish once this process serves.
type Handover struct {
	conn      int
	parentPID int
	nextID    uint64 // where this process's connection IDs start
	sockets   []l4.Socket
	admin     int // -1: none
	locks     []lockFD
	deadline  time.Time
}

// HandoverFromEnv receives the sockets when this process was started by an
// upgrade (SPLICER_UPGRADE_FD is set); it returns nil otherwise. On error
// the old process hears of it and serves on.
func HandoverFromEnv() (*Handover, error) {
	v, ok := os.LookupEnv(handoverEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(handoverEnv) // not for our own children
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q is not an inherited fd", handoverEnv, v)
	}
	unix.CloseOnExec(fd)
	h := &Handover{conn: fd, parentPID: os.Getppid(), admin: -1, deadline: time.Now().Add(upgradeTimeout)}
	if err := sendMsg(fd, handoverMsg{Type: "hello", Version: handoverVersion, PID: os.Getpid(), Handoff: true}, nil); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := h.receive(); err != nil {
		h.Fail(err)
		return nil, err
	}
	return h, nil
}

// receive reads the sockets messages.
func (h *Handover) receive() error {
	for {
		m, fds, err := recvMsg(h.conn, time.Until(h.deadline))
		if err != nil {
			return err
		}
		if m.Type != "sockets" || m.Version != handoverVersion || len(m.Sockets) != len(fds) {
			closeAll(fds)
			return fmt.Errorf("upgrade handshake: unexpected %q message (version %d, %d sockets for %d fds); this binary speaks version %d",
				m.Type, m.Version, len(m.Sockets), len(fds), handoverVersion)
		}
		h.nextID = max(h.nextID, m.NextID)
		for i, so := range m.Sockets {
			if err := h.take(so, fds[i]); err != nil {
				closeAll(fds[i:])
				return err
			}
		}
		if !m.More {
			return nil
		}
	}
}

// take files one handed fd by kind.
func (h *Handover) take(so handedSocket, fd int) error {
	switch so.Kind {
	case kindTCP, kindUDP:
		addr, err := netip.ParseAddrPort(so.Listen)
		if err != nil {
			return fmt.Errorf("upgrade handshake: socket address %q: %w", so.Listen, err)
		}
		h.sockets = append(h.sockets, l4.Socket{Protocol: so.Kind, Listen: addr, Frontend: so.Frontend, Index: so.Index, FD: fd})
	case kindAdmin:
		if h.admin >= 0 {
			unix.Close(h.admin)
		}
		h.admin = fd
	case kindLock:
		h.locks = append(h.locks, lockFD{Name: so.Lock, Exclusive: so.Exclusive, fd: fd})
	default:
		return fmt.Errorf("upgrade handshake: unknown socket kind %q", so.Kind)
	}
	return nil
}

// Fail tells the old process this one cannot take over, and why; the old
// one serves on. The fds received are closed.
func (h *Handover) Fail(err error) {
	if h == nil {
		return
	}
	_ = sendMsg(h.conn, handoverMsg{Type: "error", Error: err.Error()}, nil)
	h.close()
}

// close releases what was received and not taken by the daemon, and the
// handshake socket.
func (h *Handover) close() {
	for _, so := range h.sockets {
		unix.Close(so.FD)
	}
	h.sockets = nil
	if h.admin >= 0 {
		unix.Close(h.admin)
		h.admin = -1
	}
	for _, l := range h.locks {
		unix.Close(l.fd)
	}
	h.locks = nil
	if h.conn >= 0 {
		unix.Close(h.conn)
		h.conn = -1
	}
}

// ready tells the old process this one serves, adopts the connections it
// hands over (adopt), and waits for it to let go. A missing "done" (the
// old process died meanwhile) is logged by the caller; this process serves
// either way, with what it adopted.
func (h *Handover) ready(adopt func([]l4.HandoffRecord, []int) l4.HandoffStats) (l4.HandoffStats, error) {
	defer h.close()
	var total l4.HandoffStats
	if err := sendMsg(h.conn, handoverMsg{Type: "ready", PID: os.Getpid()}, nil); err != nil {
		return total, err
	}
	for {
		// The hand-over has its own deadline on the old side; this one
		// only keeps a dead peer from holding the start.
		m, fds, err := recvMsg(h.conn, time.Until(h.deadline)+time.Minute)
		if err != nil {
			return total, err
		}
		switch m.Type {
		case "conns":
			st := adopt(m.Conns, fds)
			total.TCP += st.TCP
			total.Clients += st.Clients
			total.Flows += st.Flows
			total.Refused += st.Refused
			if !m.More {
				if err := sendMsg(h.conn, handoverMsg{Type: "adopted", Adopted: &total}, nil); err != nil {
					return total, err
				}
			}
		case "done":
			closeAll(fds)
			return total, nil
		default:
			closeAll(fds)
			return total, fmt.Errorf("upgrade handshake: %q where conns or done was expected", m.Type)
		}
	}
}
