package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// The systemd notification protocol (sd_notify(3)), without libsystemd: a
// datagram of newline-separated KEY=VALUE lines sent to the unix socket
// named by $NOTIFY_SOCKET ("@name" is in the abstract namespace). The unit
// runs splicer as Type=notify: READY=1 when serving, RELOADING=1 with
// MONOTONIC_USEC while a reload runs, STOPPING=1 at shutdown, STATUS= for
// systemctl status, MAINPID= when an upgrade hands over, WATCHDOG=1 while
// every event loop makes progress.

// Notifier sends service manager notifications. The zero value, and a nil
// one, send nothing.
type Notifier struct {
	addr *net.UnixAddr
	// Watchdog is how often to send WATCHDOG=1: half of systemd's
	// WatchdogSec, 0 when the watchdog is off.
	Watchdog time.Duration
}

// NotifierFromEnv reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID
// as systemd sets them; nil when not run by a service manager. The
// watchdog is on only when WATCHDOG_PID is unset or names this process.
func NotifierFromEnv() *Notifier {
	socket := os.Getenv("NOTIFY_SOCKET")
	if socket == "" {
		return nil
	}
	n := NewNotifier(socket)
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	pid := os.Getenv("WATCHDOG_PID")
	if err == nil && usec > 0 && (pid == "" || pid == strconv.Itoa(os.Getpid())) {
		n.Watchdog = time.Duration(usec) * time.Microsecond / 2
	}
	return n
}

// NewNotifier returns a Notifier sending to socket, a path or "@name".
func NewNotifier(socket string) *Notifier {
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}
}

// Send sends one notification made of lines; without a socket it does
// nothing.
func (n *Notifier) Send(lines ...string) error {
	if n == nil || n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants
// it in MONOTONIC_USEC.
func monotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "0"
	}
	return strconv.FormatInt(ts.Nano()/1000, 10)
}

// notify sends lines, logging a failure (the service manager would then
// misjudge the daemon's state, which is worth a line, not a stop).
func (d *Daemon) notify(lines ...string) {
	if err := d.opts.Notifier.Send(lines...); err != nil {
		d.log.Warn().Err(err).Strs("notification", lines).Msg("service manager notification failed")
	}
}

// liveness is what the watchdog asks before each ping.
type liveness interface {
	Probe(ctx context.Context) error
}

// watchdog sends WATCHDOG=1 every interval while probe reports every loop
// making progress, until ctx ends. A loop that stops answering stops the
// pings, and systemd restarts the daemon after WatchdogSec: a stuck loop
// serves nobody, and its clients are better off with a fresh process.
func watchdog(ctx context.Context, n *Notifier, interval time.Duration, probe liveness, log zerolog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	stuck := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := probe.Probe(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !stuck {
				log.Error().Err(err).Float64("waited_seconds", interval.Seconds()).
					Msg("event loop not making progress: watchdog pings stop, systemd will restart the daemon if it lasts")
			}
			stuck = true
			continue
		case stuck:
			log.Warn().Msg("event loops answer again: watchdog pings resume")
			stuck = false
		}
		if err := n.Send("WATCHDOG=1"); err != nil {
			log.Warn().Err(err).Msg("watchdog ping failed")
		}
	}
}
