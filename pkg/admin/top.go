package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/splicerlb/splicer/pkg/stats"
)

// RunTop is `splicer top [-interval D]`: a live view of the daemon's
// frontends and backends, refreshed every interval, in the manner of
// HAProxy's hatop. Arrow keys (or j and k) select a backend; d drains it,
// m puts it in maintenance (both after a y to confirm), r makes it ready;
// q or Ctrl-C quits. Changes go through the admin API with the caller's
// credentials, so they need the permissions `splicer backend` needs. in is
// read for keys (in raw mode when it is a terminal); out gets the screen.
func RunTop(ctx context.Context, args []string, in *os.File, out io.Writer) error {
	fs, cf := clientFlags("top")
	interval := fs.Duration("interval", 2*time.Second, "time between refreshes")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: splicer top [-interval D] [-admin ADDR] [-token-file FILE] takes no arguments", ErrUsage)
	}
	if *interval < 100*time.Millisecond {
		return fmt.Errorf("%w: -interval %v is below 100ms", ErrUsage, *interval)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	term := &terminal{in: in}
	if f, ok := out.(*os.File); ok {
		term.out = f
	}
	if err := term.makeRaw(); err != nil {
		return err
	}
	defer term.restore()
	if _, err := io.WriteString(out, escAltScreen); err != nil {
		return err
	}
	defer io.WriteString(out, escMainScreen)

	done := make(chan struct{})
	keys := make(chan string, 16)
	go readKeys(done, in, keys)
	// readKeys must be gone before in is given back: it closes keys
	// when it returns.
	defer func() {
		close(done)
		for range keys {
		}
	}()

	v := &topView{addr: c.base}
	v.refresh(ctx, c)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		cols, rows := term.size()
		if _, err := io.WriteString(out, v.screen(cols, rows, time.Now())); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			v.refresh(ctx, c)
		case k, ok := <-keys:
			if !ok || !v.key(ctx, c, k) {
				return nil
			}
		}
	}
}

// readKeys sends the keys read from in until in ends or done closes,
// then closes keys. It polls so that it notices done without a key.
func readKeys(done <-chan struct{}, in *os.File, keys chan<- string) {
	defer close(keys)
	buf := make([]byte, 64)
	fds := []unix.PollFd{{Fd: int32(in.Fd()), Events: unix.POLLIN}}
	for {
		select {
		case <-done:
			return
		default:
		}
		n, err := unix.Poll(fds, 200)
		if errors.Is(err, unix.EINTR) || err == nil && n == 0 {
			continue
		}
		if err != nil {
			return
		}
		n, err = in.Read(buf)
		if n == 0 || err != nil {
			return
		}
		for _, k := range splitKeys(buf[:n]) {
			select {
			case keys <- k:
			case <-done:
				return
			}
		}
	}
}

// splitKeys turns the bytes of one read into keys: "up" and "down" for the
// arrow keys' escape sequences, the character itself otherwise.
func splitKeys(b []byte) []string {
	var out []string
	for len(b) > 0 {
		if len(b) >= 3 && b[0] == 0x1b && (b[1] == '[' || b[1] == 'O') {
			switch b[2] {
			case 'A':
				out = append(out, "up")
			case 'B':
				out = append(out, "down")
			}
			b = b[3:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		out = append(out, string(r))
		b = b[size:]
	}
	return out
}

// topView is what `splicer top` shows: the last stats, the selected
// backend, and a status line.
type topView struct {
	addr    string
	st      stats.Stats
	err     error
	fetched time.Time
	// sel names the selected backend, kept by name across refreshes.
	selFrontend, selBackend string
	status                  string
	// pending is a drain or maint waiting for y.
	pending string
	offset  int // first table row on screen
}

func (v *topView) refresh(ctx context.Context, c *Client) {
	st, err := c.Stats(ctx)
	v.err = err
	if err != nil {
		return
	}
	v.st, v.fetched = st, time.Now()
	if v.selected() < 0 {
		v.selFrontend, v.selBackend = "", ""
		if bs := v.backends(); len(bs) > 0 {
			v.selFrontend, v.selBackend = bs[0][0], bs[0][1]
		}
	}
}

// backends lists every backend as {frontend, backend}, in screen order.
func (v *topView) backends() [][2]string {
	var out [][2]string
	for _, fe := range v.st.Frontends {
		for _, b := range fe.Backends {
			out = append(out, [2]string{fe.Name, b.Name})
		}
	}
	return out
}

// selected is the index of the selected backend in backends(), or -1.
func (v *topView) selected() int {
	for i, b := range v.backends() {
		if b[0] == v.selFrontend && b[1] == v.selBackend {
			return i
		}
	}
	return -1
}

// key handles one key; false means quit.
func (v *topView) key(ctx context.Context, c *Client, k string) bool {
	if v.pending != "" {
		action := v.pending
		v.pending = ""
		if k == "y" || k == "Y" {
			v.setState(ctx, c, action)
		} else {
			v.status = action + " cancelled"
		}
		return true
	}
	bs := v.backends()
	i := v.selected()
	switch k {
	case "q", "Q", "\x03", "\x04": // Ctrl-C, Ctrl-D
		return false
	case "up", "k":
		if i > 0 {
			v.selFrontend, v.selBackend = bs[i-1][0], bs[i-1][1]
		}
	case "down", "j":
		if i >= 0 && i+1 < len(bs) {
			v.selFrontend, v.selBackend = bs[i+1][0], bs[i+1][1]
		}
	case "d", "m":
		if i < 0 {
			return true
		}
		v.pending = map[string]string{"d": stats.StateDrain, "m": stats.StateMaint}[k]
		v.status = ""
	case "r":
		if i >= 0 {
			v.setState(ctx, c, stats.StateReady)
		}
	}
	return true
}

func (v *topView) setState(ctx context.Context, c *Client, state string) {
	target := v.selFrontend + "/" + v.selBackend
	if err := c.SetState(ctx, v.selFrontend, v.selBackend, state); err != nil {
		// The daemon's reason, without the request the status line has
		// no room for.
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			err = apiErr
		}
		v.status = fmt.Sprintf("%s %s refused: %v", state, target, err)
		return
	}
	v.status = target + ": state " + state
	v.refresh(ctx, c)
}

// screen renders the whole screen for a terminal of cols x rows: a header,
// the table (scrolled to keep the selection in view), a status line and
// the keys.
func (v *topView) screen(cols, rows int, now time.Time) string {
	lines, styles, selRow := v.table(now)
	head := fmt.Sprintf("splicer %s  up %s  connections %d/%d  pipes %d/%d  fds %d  %s  %s",
		v.st.Version, shortDuration(time.Duration(v.st.Uptime*float64(time.Second))),
		v.st.Connections, v.st.MaxConnections, v.st.PipesInUse, v.st.PipesMax, v.st.FDs,
		strings.TrimPrefix(v.addr, "http://"), now.Format("15:04:05"))
	status := v.status
	switch {
	case v.pending != "":
		status = fmt.Sprintf("%s %s/%s? y to confirm, any other key cancels", v.pending, v.selFrontend, v.selBackend)
	case v.err != nil:
		// The age of the figures first: the error is long enough to run
		// off an 80-column screen.
		status = "refresh failed: " + v.err.Error()
		if !v.fetched.IsZero() {
			status = fmt.Sprintf("refresh failed, showing figures %s old: %v", shortDuration(now.Sub(v.fetched)), v.err)
		}
	}
	help := "↑/↓ select  d drain  r ready  m maint  q quit   (/S: per second, now/peak)"

	var b strings.Builder
	b.WriteString(escHome)
	put := func(text, style string) {
		text = truncate(text, cols)
		if style != "" {
			text = style + text + strings.Repeat(" ", max(cols-utf8.RuneCountInString(text), 0)) + escReset
		}
		b.WriteString(text + escClearLine + "\r\n")
	}
	put(head, "")
	put("", "")
	// The body is the column heading and as many table rows as fit,
	// scrolled to keep the selection in view.
	body := max(rows-4, 2)
	visible := body - 1
	if selRow > 0 {
		v.offset = min(v.offset, selRow-1)
		v.offset = max(v.offset, selRow-visible)
	}
	v.offset = max(min(v.offset, len(lines)-1-visible), 0)
	shown := 0
	for i, line := range lines {
		if i > 0 && (i-1 < v.offset || i-1 >= v.offset+visible) {
			continue
		}
		put(line, styles[i])
		shown++
	}
	for ; shown < body; shown++ {
		put("", "")
	}
	put(status, "")
	b.WriteString(truncate(help, cols) + escClearLine + escClearBelow)
	return b.String()
}

// table aligns the rows: the column heading, then each frontend and its
// backends. It returns each line's style (the selection reversed, a backend
// down in red, one drained or in maintenance in yellow) and the index of the
// selected line (0 when none).
func (v *topView) table(now time.Time) (lines, styles []string, selRow int) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tHEALTH\tSINCE\tWEIGHT\tACTIVE\tPEAK\tQUEUE\tCONN/S\tIN/S\tOUT/S\tERR/S\tCHECK")
	styles = append(styles, escBold)
	for _, fe := range v.st.Frontends {
		r := fe.Rates
		queue := queueText(fe.QueuedNow, r)
		if fe.Protocol == protocolUDP {
			queue = "-"
		}
		fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s %s %s\n", fe.Name, fe.Active,
			fe.Peak, queue, nowPeak(r, count, connsOf), nowPeak(r, byteRate, bytesInOf),
			nowPeak(r, byteRate, bytesOutOf), nowPeak(r, count, errorsOf),
			fe.Protocol, strings.Join(fe.Listen, ","), fe.Strategy)
		styles = append(styles, escBold)
		for _, b := range fe.Backends {
			r := b.Rates
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%d\t-\t%s\t%s\t%s\t%s\t%s\n", b.Name, b.State,
				healthWord(b.Health), since(b.Health, now), weightText(b), b.Active, b.Peak,
				nowPeak(r, count, connsOf), nowPeak(r, byteRate, bytesInOf), nowPeak(r, byteRate, bytesOutOf),
				nowPeak(r, count, errorsOf), checkText(b.Health))
			style := ""
			switch {
			case fe.Name == v.selFrontend && b.Name == v.selBackend:
				style = escReverse
				selRow = len(styles)
			case b.Health.Checked && !b.Health.Up:
				style = escRed
			case b.State != stats.StateReady:
				style = escYellow
			}
			styles = append(styles, style)
		}
	}
	tw.Flush()
	lines = strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	return lines, styles, selRow
}
