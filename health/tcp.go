package health

import (
	"context"
	"net/netip"
)

// probeTCP passes when a TCP connection to addr opens before ctx is done.
func probeTCP(ctx context.Context, addr netip.AddrPort) (string, error) {
	_, release, err := dial(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	release()
	return "connected", nil
}
