package splice

import "errors"

// Carrier holds bytes on their way from a source fd to a destination fd.
// *Pipe and *Buffer implement it. A Carrier belongs to one event loop and
// is not safe for concurrent use.
type Carrier interface {
	// Fill moves up to max bytes from src into the empty carrier and
	// returns how many it moved. (0, nil) means EOF on src; unix.EAGAIN
	// means src has nothing to read now; other errors come back as the
	// bare errno. It fails with ErrNotEmpty when Len() > 0 and with
	// ErrInvalidMax when max < 1.
	Fill(src int, max int) (n int, err error)
	// Drain writes held bytes to dst until the carrier is empty or dst
	// is full, and returns how many it wrote. unix.EAGAIN means dst is
	// full and Len() bytes remain; EPIPE, ECONNRESET and other errors
	// come back as the bare errno. Draining an empty carrier is (0, nil).
	Drain(dst int) (n int, err error)
	// Len returns the number of bytes held now.
	Len() int
}

var (
	// ErrNotEmpty is returned by Fill on a carrier that still holds bytes.
	ErrNotEmpty = errors.New("splice: fill of a carrier that is not empty")
	// ErrInvalidMax is returned by Fill when max < 1, which could not be
	// told apart from EOF.
	ErrInvalidMax = errors.New("splice: fill max must be at least 1")
	// ErrSpliceUnsupported is returned by a Pipe when splice(2) refuses
	// the fd type (EINVAL). From Fill, nothing was moved and the caller
	// switches the connection to a Buffer. From Drain, the held bytes are
	// stranded in the pipe and the connection must be closed.
	ErrSpliceUnsupported = errors.New("splice: fd does not support splice")
)
