package health

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// replayHTTP runs one keep-alive http check over a socket pair whose server
// side writes stream and half-closes, and reports the verdict and whether
// the connection was kept for the next check.
func replayHTTP(t testing.TB, stream []byte) (s seen, kept bool, err error) {
	t.Helper()
	client, done := scriptedServer(t, stream)
	p, perr := newHTTPProbe("/health", 200, true)
	if perr != nil {
		t.Fatal(perr)
	}
	var sess session
	ctx, cancel := context.WithTimeout(withSession(context.Background(), &sess), hostileTimeout)
	defer cancel()
	untie, berr := bind(ctx, client)
	if berr != nil {
		t.Fatal(berr)
	}
	start := time.Now()
	s, err = p.exchange(ctx, &sess, newHTTPConn(client), untie, netip.MustParseAddrPort("127.0.0.1:80"), true, false)
	if d := time.Since(start); d > hostileTimeout+hostileSlack {
		t.Fatalf("verdict after %v on %q", d, stream)
	}
	kept = sess.idle != nil
	sess.close()
	<-done
	return s, kept, err
}

// TestHTTPHostileTruncation cuts a response at every byte: cut inside the
// head it fails; cut inside the body the status stands, but the
// connection, whose next response would start mid-body, is not kept.
func TestHTTPHostileTruncation(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
	for _, stream := range []string{head + "hello", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"} {
		if _, kept, err := replayHTTP(t, []byte(stream)); err != nil || !kept {
			t.Fatalf("whole response: %v, kept %v; want a pass, kept", err, kept)
		}
		for cut := range len(stream) {
			s, kept, err := replayHTTP(t, []byte(stream[:cut]))
			switch {
			case kept:
				t.Fatalf("kept after the first %d of %d bytes", cut, len(stream))
			case cut < len(head) && err == nil:
				t.Fatalf("passed on the first %d bytes, inside the head: %s", cut, s.detail)
			}
		}
	}
}

// TestHTTPHostileCorruption flips each byte of a response in turn: a
// verdict comes in time and without a panic.
func TestHTTPHostileCorruption(t *testing.T) {
	b := []byte("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello")
	for i := range b {
		for _, x := range []byte{0xff, 0x01} {
			b[i] ^= x
			replayHTTP(t, b)
			b[i] ^= x
		}
	}
}

// FuzzHTTPProbe feeds arbitrary responses to a keep-alive http check:
// `make fuzz` runs it.
func FuzzHTTPProbe(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nbody until close"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		replayHTTP(t, stream)
	})
}
