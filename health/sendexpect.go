package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"

	"github.com/splicerlb/splicer/pkg/resp"
)

// sendExpect writes a request and matches the reply against a prefix or a
// regular expression (exactly one of expect and re is set).
type sendExpect struct {
	network string // "tcp", or "udp" for one request and one reply datagram
	send    []byte
	expect  []byte
	re      *regexp.Regexp
}

// probe sends the request and reads until the reply matches, cannot match
// any more, reaches maxReply, ends (EOF; over UDP, the first datagram) or ctx
// is done.
func (p *sendExpect) probe(ctx context.Context, addr netip.AddrPort) (seen, error) {
	conn, release, err := dial(ctx, p.network, addr)
	if err != nil {
		return seen{}, err
	}
	defer release()
	if _, err := conn.Write(p.send); err != nil {
		return seen{}, failed(ctx, "write", err)
	}
	initial := 512
	if p.network == "udp" {
		initial = maxReply // a datagram must be read whole, in one call
	}
	buf := make([]byte, 0, initial)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, rerr := conn.Read(buf[len(buf):min(cap(buf), maxReply)])
		buf = buf[:len(buf)+n]
		if done, err := p.match(buf); done {
			if err != nil {
				return seen{}, err
			}
			return saw("reply matched"), nil
		}
		switch {
		case errors.Is(rerr, io.EOF):
			return seen{}, p.mismatch(buf, "connection closed")
		case rerr != nil:
			if len(buf) > 0 {
				return seen{}, fmt.Errorf("%w after partial reply %s", failed(ctx, "read", rerr), resp.Quote(buf))
			}
			return seen{}, failed(ctx, "read", rerr)
		case p.network == "udp":
			return seen{}, p.mismatch(buf, "")
		case len(buf) == maxReply:
			return seen{}, p.mismatch(buf, "reply limit reached")
		}
	}
}

// match reports whether reply decides the verdict: a prefix mismatch fails
// at the first differing byte; a regexp can only pass early.
func (p *sendExpect) match(reply []byte) (bool, error) {
	if p.re != nil {
		return p.re.Match(reply), nil
	}
	if len(reply) >= len(p.expect) {
		if bytes.HasPrefix(reply, p.expect) {
			return true, nil
		}
		return true, p.mismatch(reply, "")
	}
	if !bytes.HasPrefix(p.expect, reply) {
		return true, p.mismatch(reply, "")
	}
	return false, nil
}

// mismatch describes a reply that failed; why, when set, says how the reply
// ended.
func (p *sendExpect) mismatch(reply []byte, why string) error {
	switch {
	case len(reply) == 0 && why == "":
		return errors.New("empty reply")
	case len(reply) == 0:
		return errors.New(why + " before a reply")
	}
	var err error
	if p.re != nil {
		err = fmt.Errorf("reply %s does not match /%s/", resp.Quote(reply), p.re)
	} else {
		err = fmt.Errorf("reply %s does not start with %s", resp.Quote(reply), resp.Quote(p.expect))
	}
	if why != "" {
		err = fmt.Errorf("%w (%s)", err, why)
	}
	return err
}
