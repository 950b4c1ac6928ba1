package health

import (
	"context"
	"net/netip"
)

// probeTCP passes when a TCP connection to addr opens before ctx is done.
func probeTCP(ctx context.Context, addr netip.AddrPort) (seen, error) {
	_, release, err := dial(ctx, "tcp", addr)
	if err != nil {
		return seen{}, err
	}
	release()
	return saw("connected"), nil
}
