package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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

func (e *APIError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// Client calls a splicer admin API. The zero value is not usable; use
// NewClient.
type Client struct {
	base string // scheme://host:port, no trailing slash
	http *http.Client
}

// NewClient returns a Client for the admin port at addr, given as host:port
// or as an http(s) URL; an empty addr means DefaultAddr.
func NewClient(addr string) *Client {
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	// The timeout keeps a CLI call from hanging on a wedged daemon.
	return &Client{base: strings.TrimRight(addr, "/"), http: &http.Client{Timeout: 10 * time.Second}}
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
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		if json.NewDecoder(resp.Body).Decode(&eb) != nil || eb.Error == "" {
			eb.Error = http.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("admin %s %s: %w", method, path, &APIError{resp.StatusCode, eb.Error})
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("admin %s %s: decoding answer: %w", method, path, err)
		}
	}
	return nil
}

// RunStats is `splicer stats [-admin ADDR]`: it fetches the stats and
// prints them as an aligned table to stdout.
func RunStats(ctx context.Context, args []string, stdout io.Writer) error {
	fs, addr := cliFlags("stats")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: splicer stats [-admin ADDR] takes no arguments", ErrUsage)
	}
	st, err := NewClient(*addr).Stats(ctx)
	if err != nil {
		return err
	}
	return WriteStatsTable(stdout, st)
}

// RunBackend is `splicer backend drain|ready|maint FRONTEND BACKEND` and
// `splicer backend weight FRONTEND BACKEND N`, with -admin ADDR before or
// after the action. BACKEND is the backend's name, which defaults to its
// address. It prints the change to stdout once the daemon applied it.
func RunBackend(ctx context.Context, args []string, stdout io.Writer) error {
	const usage = "splicer backend [-admin ADDR] drain|ready|maint FRONTEND BACKEND | weight FRONTEND BACKEND N"
	fs, addr := cliFlags("backend")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: %s", ErrUsage, usage)
	}
	action := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	rest := fs.Args()
	c := NewClient(*addr)
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

// cliFlags returns a flag set that reports errors to the caller instead of
// printing or exiting, so cmd/splicer owns all output and exit codes.
func cliFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("admin", DefaultAddr, "admin `ADDR`ess of the daemon (host:port or URL)")
	return fs, addr
}
