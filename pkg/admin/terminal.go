package admin

import (
	"os"

	"golang.org/x/sys/unix"
)

// terminal is the little of a terminal `splicer top` needs, with plain
// termios and ANSI escapes rather than a TUI library: raw input, the
// window size, and the alternate screen.
type terminal struct {
	in    *os.File
	out   *os.File // nil when the output is not a file
	saved *unix.Termios
}

// makeRaw puts the input terminal in raw mode (no echo, no line editing,
// no signals from keys: Ctrl-C arrives as a key) and remembers how it was;
// it does nothing when the input is not a terminal.
func (t *terminal) makeRaw() error {
	fd := int(t.in.Fd())
	st, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil // not a terminal: keys come from a pipe, as they are
	}
	saved := *st
	st.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
	st.Iflag &^= unix.IXON | unix.ICRNL | unix.BRKINT | unix.INPCK | unix.ISTRIP
	st.Cc[unix.VMIN], st.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, st); err != nil {
		return os.NewSyscallError("tcsetattr", err)
	}
	t.saved = &saved
	return nil
}

// restore puts the input terminal back as makeRaw found it.
func (t *terminal) restore() {
	if t.saved != nil {
		_ = unix.IoctlSetTermios(int(t.in.Fd()), unix.TCSETS, t.saved)
		t.saved = nil
	}
}

// size returns the output terminal's columns and rows, 80x24 when it is
// not a terminal.
func (t *terminal) size() (cols, rows int) {
	if t.out != nil {
		if ws, err := unix.IoctlGetWinsize(int(t.out.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 && ws.Row > 0 {
			return int(ws.Col), int(ws.Row)
		}
	}
	return 80, 24
}

// ANSI sequences `splicer top` writes.
const (
	escAltScreen  = "\x1b[?1049h\x1b[?25l" // alternate screen, cursor hidden
	escMainScreen = "\x1b[?25h\x1b[?1049l" // cursor shown, main screen back
	escHome       = "\x1b[H"
	escClearLine  = "\x1b[K"
	escClearBelow = "\x1b[J"
	escReverse    = "\x1b[7m"
	escRed        = "\x1b[31m"
	escYellow     = "\x1b[33m"
	escBold       = "\x1b[1m"
	escReset      = "\x1b[0m"
)
