package health

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
)

// httpProbe sends GET path to the target and wants one status code. Its
// transport opens a fresh connection per probe (a reused one would hide a
// backend that stopped accepting), ignores proxy settings from the
// environment and does not follow redirects: a 301 is an answer to judge.
type httpProbe struct {
	client *http.Client
	path   *url.URL // path and query only
	status int
}

func newHTTPProbe(path string, status int) (*httpProbe, error) {
	u, err := url.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("health.path %q: %w", path, err)
	}
	if u.Scheme != "" || u.Host != "" {
		return nil, fmt.Errorf("health.path %q: want a path, not a URL", path)
	}
	return &httpProbe{
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:                  nil,
				DialContext:            dialHTTP,
				DisableKeepAlives:      true,
				MaxResponseHeaderBytes: maxReply,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		path:   u,
		status: status,
	}, nil
}

func (p *httpProbe) probe(ctx context.Context, addr netip.AddrPort) (seen, error) {
	u := *p.path
	u.Scheme, u.Host = "http", addr.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return seen{}, fmt.Errorf("GET %s: %w", p.path, err)
	}
	req.Header.Set("User-Agent", "splicer-health")
	resp, err := p.client.Do(req)
	if err != nil {
		return seen{}, failed(ctx, "GET "+p.path.String(), err)
	}
	// Without keep-alive, closing the body closes the connection.
	resp.Body.Close()
	if resp.StatusCode != p.status {
		return seen{}, fmt.Errorf("GET %s: status %d, want %d", p.path, resp.StatusCode, p.status)
	}
	return saw(fmt.Sprintf("GET %s: status %d", p.path, resp.StatusCode)), nil
}

// dialHTTP dials for the HTTP probe and sends the PROXY header the target
// expects first, as dial does for the other probes.
func dialHTTP(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	if err := sendPreamble(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
