package l4

import (
	"testing"
	"unsafe"
)

// TestConnSizeClass holds the connection struct to Go's 576-byte size
// class: an idle connection's memory is mostly this struct (the goal is
// under 1 KiB of RSS per idle connection, with the map entry, the slot and
// the runtime's share), and the next class is 640 bytes. A field that
// pushes it over belongs in a side struct that only the connections using
// it pay for (see proxied), or in a padding hole (see the flags behind
// state).
func TestConnSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(conn{}); got > 576 {
		t.Errorf("conn is %d bytes, over the 576-byte size class", got)
	}
}
