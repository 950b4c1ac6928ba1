package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/stats"
)

// ErrUsage marks a command line the CLI helpers cannot run; the caller
// prints usage and exits 2.
var ErrUsage = errors.New("usage")

// APIError is an error answer from the admin API.
type APIError struct {
	Status  int    // HTTP status
	Message string // the "error" field of the JSON body, or the status text
}

// Error returns the message with the HTTP status, as "forbidden (HTTP 403)".
func (e *APIError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// Client calls a splicer admin API. The zero value is not usable; use
// NewClient or NewClientWith.
type Client struct {
	base  string // scheme://host:port, no trailing slash
	http  *http.Client
	token string
	// maxAnswer bounds the body of an answer read, so that a peer that
	// is not a splicer daemon cannot make the CLI hold any amount of it.
	maxAnswer int64
}

// maxAnswer is Client.maxAnswer: the stats of thousands of backends, or a
// page of MaxConnLimit connections, take a few MiB.
const maxAnswer = 64 << 20

// ClientOptions are a Client's credentials and trust.
type ClientOptions struct {
	// Token is sent as "Authorization: Bearer TOKEN"; "" sends none (the
	// admin socket authenticates by the peer's uid instead).
	Token string
	// CAFile is a PEM bundle to verify an https admin port with; "" uses
	// the system's roots.
	CAFile string
}

// unixPrefix marks an admin socket address: unix:/run/splicer/admin.sock.
const unixPrefix = "unix:"

// NewClient returns a Client without credentials for the admin port at
// addr; see NewClientWith.
func NewClient(addr string) *Client {
	return newClient(addr, "", nil)
}

// NewClientWith returns a Client for the admin port at addr: host:port, an
// http(s) URL, or the admin socket as unix:PATH or an absolute PATH; ""
// means DefaultAddr.
func NewClientWith(addr string, opts ClientOptions) (*Client, error) {
	var tlsConfig *tls.Config
	if opts.CAFile != "" {
		pool, err := loadCertPool(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("admin client: CA file: %w", err)
		}
		tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return newClient(addr, opts.Token, tlsConfig), nil
}

func newClient(addr, token string, tlsConfig *tls.Config) *Client {
	if addr == "" {
		addr = DefaultAddr
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	tr.Proxy = nil // the admin port is never reached through a proxy
	if path, ok := strings.CutPrefix(addr, unixPrefix); ok || strings.HasPrefix(addr, "/") {
		if !ok {
			path = addr
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		// The host names nothing on a socket; the server does not check it.
		addr = "http://splicer"
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	// The timeout keeps a CLI call from hanging on a wedged daemon.
	return &Client{
		base:      strings.TrimRight(addr, "/"),
		http:      &http.Client{Timeout: 10 * time.Second, Transport: tr},
		token:     token,
		maxAnswer: maxAnswer,
	}
}

// Stats fetches GET /api/v1/stats.
func (c *Client) Stats(ctx context.Context) (stats.Stats, error) {
	var st stats.Stats
	err := c.call(ctx, http.MethodGet, "/api/v1/stats", nil, &st)
	return st, err
}

// SetState sets a backend's admin state ("ready", "drain" or "maint").
func (c *Client) SetState(ctx context.Context, frontend, backend, state string) error {
	return c.call(ctx, http.MethodPost, backendPath(frontend, backend, "state"), stateRequest{State: state}, nil)
}

// SetWeight sets a backend's weight.
func (c *Client) SetWeight(ctx context.Context, frontend, backend string, weight int) error {
	return c.call(ctx, http.MethodPut, backendPath(frontend, backend, "weight"), weightRequest{Weight: &weight}, nil)
}

// AuditCheckpoint fetches GET /api/v1/audit/checkpoint.
func (c *Client) AuditCheckpoint(ctx context.Context) (AuditCheckpoint, error) {
	var cp AuditCheckpoint
	err := c.call(ctx, http.MethodGet, "/api/v1/audit/checkpoint", nil, &cp)
	return cp, err
}

// backendPath escapes the names, since a backend named by an IPv6 address
// holds brackets and colons, and any name may hold a slash.
func backendPath(frontend, backend, what string) string {
	return "/api/v1/frontends/" + url.PathEscape(frontend) + "/backends/" + url.PathEscape(backend) + "/" + what
}

// call sends in as the JSON body (none when nil) and decodes a 2xx answer
// into out (ignored when nil); any other answer becomes an *APIError.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer := &io.LimitedReader{R: resp.Body, N: c.maxAnswer}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		if json.NewDecoder(answer).Decode(&eb) != nil || eb.Error == "" {
			eb.Error = http.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("admin %s %s: %w", method, path, &APIError{resp.StatusCode, eb.Error})
	}
	if out != nil {
		if err := json.NewDecoder(answer).Decode(out); err != nil {
			if answer.N == 0 {
				return fmt.Errorf("admin %s %s: the answer is larger than %d bytes", method, path, c.maxAnswer)
			}
			return fmt.Errorf("admin %s %s: decoding answer: %w", method, path, err)
		}
	}
	return nil
}

// RunStats is `splicer stats [-json] [-admin ADDR] [-token-file FILE]`:
// it fetches the stats and prints them as an aligned table to stdout, or
// with -json as the API's JSON document, indented.
func RunStats(ctx context.Context, args []string, stdout io.Writer) error {
	fs, cf := clientFlags("stats")
	asJSON := fs.Bool("json", false, "print GET /api/v1/stats as JSON")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: splicer stats [-json] [-admin ADDR] [-token-file FILE] takes no arguments", ErrUsage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	st, err := c.Stats(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return WriteStatsTable(stdout, st, time.Now())
}

// RunBackend is `splicer backend drain|ready|maint FRONTEND BACKEND` and
// `splicer backend weight FRONTEND BACKEND N`, with the flags anywhere.
// BACKEND is the backend's name, which defaults to its address. It prints
// the change to stdout once the daemon applied it.
func RunBackend(ctx context.Context, args []string, stdout io.Writer) error {
	const usage = "splicer backend [-admin ADDR] [-token-file FILE] drain|ready|maint FRONTEND BACKEND | weight FRONTEND BACKEND N"
	fs, cf := clientFlags("backend")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: %s", ErrUsage, usage)
	}
	action, rest := pos[0], pos[1:]
	c, err := cf.client()
	if err != nil {
		return err
	}
	switch action {
	case stats.StateReady, stats.StateDrain, stats.StateMaint:
		if len(rest) != 2 {
			return fmt.Errorf("%w: %s", ErrUsage, usage)
		}
		if err := c.SetState(ctx, rest[0], rest[1], action); err != nil {
			return err
		}
		_, err := fmt.Fprintf(stdout, "%s/%s: state %s\n", rest[0], rest[1], action)
		return err
	case "weight":
		if len(rest) != 3 {
			return fmt.Errorf("%w: %s", ErrUsage, usage)
		}
		w, err := strconv.Atoi(rest[2])
		if err != nil {
			return fmt.Errorf("%w: weight %q is not a number", ErrUsage, rest[2])
		}
		if err := c.SetWeight(ctx, rest[0], rest[1], w); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s/%s: weight %d\n", rest[0], rest[1], w)
		return err
	default:
		return fmt.Errorf("%w: unknown action %q; %s", ErrUsage, action, usage)
	}
}

// TokenFileEnv names the token file when -token-file is not given.
const TokenFileEnv = "SPLICER_TOKEN_FILE"

// newFlagSet returns a flag set that reports errors to the caller instead
// of printing or exiting, so cmd/splicer owns all output and exit codes.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// AdminEnv names the admin address when -admin is not given.
const AdminEnv = "SPLICER_ADMIN"

// clientFlagValues are the flags every command that calls the daemon takes.
type clientFlagValues struct {
	addr, tokenFile, caFile string
}

// clientFlags returns a flag set with -admin, -token-file and -cacert.
func clientFlags(name string) (*flag.FlagSet, *clientFlagValues) {
	fs := newFlagSet(name)
	v := &clientFlagValues{}
	fs.StringVar(&v.addr, "admin", "", "admin `ADDR`ess of the daemon: host:port, an http(s) URL, or unix:PATH of the admin socket (default $"+AdminEnv+", else "+DefaultAddr+")")
	fs.StringVar(&v.tokenFile, "token-file", "", "`FILE` holding the bearer token (default $"+TokenFileEnv+")")
	fs.StringVar(&v.caFile, "cacert", "", "PEM `FILE` of the CA to verify an https admin port with")
	return fs, v
}

// parseArgs parses fs's flags wherever they stand among args and returns
// the other arguments in order: "splicer backend drain pg a -admin X"
// works as well as the flags first. An argument "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// Parse stops at the first non-flag, or after a "--" it consumed.
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// client builds the Client the flags describe. The token file gets the
// checks a secret does: only its owner may read or change it.
func (v *clientFlagValues) client() (*Client, error) {
	opts := ClientOptions{CAFile: v.caFile}
	file := v.tokenFile
	if file == "" {
		file = os.Getenv(TokenFileEnv)
	}
	if file != "" {
		b, err := config.ReadSecretFile(file)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		opts.Token = strings.TrimSpace(string(b))
		if opts.Token == "" {
			return nil, fmt.Errorf("token file %s is empty", file)
		}
	}
	addr := v.addr
	if addr == "" {
		addr = os.Getenv(AdminEnv)
	}
	return NewClientWith(addr, opts)
}
