package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/splicerlb/splicer/pkg/stats"
)

// Connections fetches one page of GET /api/v1/connections: the live
// connections of frontend ("" for all) with an ID above after, at most
// limit (the server clamps it to MaxConnLimit).
func (c *Client) Connections(ctx context.Context, frontend string, after uint64, limit int) (ConnPage, error) {
	q := url.Values{}
	if frontend != "" {
		q.Set("frontend", frontend)
	}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/api/v1/connections"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var page ConnPage
	err := c.call(ctx, http.MethodGet, path, nil, &page)
	return page, err
}

// CloseConnection closes a live connection: both its peers get a reset.
func (c *Client) CloseConnection(ctx context.Context, id uint64) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/connections/"+strconv.FormatUint(id, 10), nil, nil)
}

// allConnections pages through the connections of frontend until limit
// are read (0: all of them), and returns them with the total the last
// page reported.
func (c *Client) allConnections(ctx context.Context, frontend string, limit int) ([]stats.Conn, int, error) {
	var out []stats.Conn
	var after uint64
	for {
		want := MaxConnLimit
		if limit > 0 {
			want = min(want, limit-len(out))
		}
		page, err := c.Connections(ctx, frontend, after, want)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, page.Connections...)
		if page.NextAfter == 0 || limit > 0 && len(out) >= limit {
			return out, page.Total, nil
		}
		after = page.NextAfter
	}
}

const connsUsage = "splicer conns [-frontend F] [-limit N] [-json] [-admin ADDR] [-token-file FILE] | conns kill ID..."

// RunConns is `splicer conns [-frontend F] [-limit N] [-json]`, which lists
// the live connections (UDP: flows) oldest first, and `splicer conns kill
// ID...`, which closes each one, resetting both of its peers.
func RunConns(ctx context.Context, args []string, stdout io.Writer) error {
	fs, cf := clientFlags("conns")
	frontend := fs.String("frontend", "", "list the connections of `FRONTEND` only")
	limit := fs.Int("limit", DefaultConnLimit, "list at most `N` connections; 0 lists them all")
	asJSON := fs.Bool("json", false, "print the connections as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if *limit < 0 {
		return fmt.Errorf("%w: -limit %d is negative", ErrUsage, *limit)
	}
	if len(pos) > 0 && pos[0] != "kill" {
		return fmt.Errorf("%w: unknown argument %q; %s", ErrUsage, pos[0], connsUsage)
	}
	if len(pos) > 0 {
		return killConns(ctx, cf, pos[1:], stdout)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	conns, total, err := c.allConnections(ctx, *frontend, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		if conns == nil {
			conns = []stats.Conn{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ConnPage{Connections: conns, Total: total})
	}
	return writeConnTable(stdout, conns, total)
}

func killConns(ctx context.Context, cf *clientFlagValues, ids []string, stdout io.Writer) error {
	if len(ids) == 0 {
		return fmt.Errorf("%w: %s", ErrUsage, connsUsage)
	}
	var nums []uint64
	for _, v := range ids {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("%w: connection ID %q is not a number", ErrUsage, v)
		}
		nums = append(nums, id)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	for _, id := range nums {
		if err := c.CloseConnection(ctx, id); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "connection %d closed\n", id); err != nil {
			return err
		}
	}
	return nil
}

// writeConnTable prints conns as an aligned table and, when it shows only
// some, how many there are.
func writeConnTable(w io.Writer, conns []stats.Conn, total int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFRONTEND\tCLIENT\tBACKEND\tSTATE\tAGE\tBYTES IN\tBYTES OUT")
	for _, c := range conns {
		be := c.Backend
		if be == "" {
			be = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", c.ID, c.Frontend, c.Client, be, c.State,
			shortDuration(time.Duration(c.Age*float64(time.Second))), c.BytesIn, c.BytesOut)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(conns) < total {
		_, err := fmt.Fprintf(w, "(%d of %d shown; -limit 0 lists all)\n", len(conns), total)
		return err
	}
	return nil
}
