package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// lifecycleTimeout bounds a reload or upgrade call: an upgrade waits for
// the new process to load its config and bind, far longer than a stats call.
const lifecycleTimeout = 2 * time.Minute

// Reload asks the daemon to reload its configuration. A refused reload
// returns the result, with its problems, and an error.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var res ReloadResult
	err := c.lifecycle(ctx, "/api/v1/reload", &res)
	if err == nil && !res.OK {
		err = fmt.Errorf("reload refused: %d problem(s)", len(res.Problems))
	}
	return res, err
}

// Upgrade asks the daemon to start its binary again and hand over. A
// failed upgrade returns the result, with its reason, and an error.
func (c *Client) Upgrade(ctx context.Context) (UpgradeResult, error) {
	var res UpgradeResult
	err := c.lifecycle(ctx, "/api/v1/upgrade", &res)
	if err == nil && !res.OK {
		err = fmt.Errorf("upgrade failed: %s", res.Error)
	}
	return res, err
}

// lifecycle POSTs to path and decodes the answer into out whatever its
// status, as long as it is the route's result; any other answer becomes
// an *APIError.
func (c *Client) lifecycle(ctx context.Context, path string, out any) error {
	// An empty JSON body: the admin port takes changes only as JSON.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader("{}"))
	if err != nil {
		return fmt.Errorf("admin POST %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	slow := *c.http
	slow.Timeout = lifecycleTimeout
	resp, err := slow.Do(req)
	if err != nil {
		return fmt.Errorf("admin POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("admin POST %s: %w", path, err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusUnprocessableEntity, http.StatusInternalServerError:
		if json.Unmarshal(body, out) == nil && strings.Contains(string(body), `"ok"`) {
			return nil
		}
	}
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil || eb.Error == "" {
		eb.Error = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("admin POST %s: %w", path, &APIError{resp.StatusCode, eb.Error})
}

// RunReload is `splicer reload [-admin ADDR] [-token-file FILE]`: it asks the daemon to reload
// and prints what changed, or every problem that kept the old config in
// force.
func RunReload(ctx context.Context, args []string, stdout io.Writer) error {
	fs, cf := clientFlags("reload")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: splicer reload [-admin ADDR] [-token-file FILE] takes no arguments", ErrUsage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	res, err := c.Reload(ctx)
	for _, p := range res.Problems {
		fmt.Fprintln(stdout, p.Text)
	}
	if err != nil {
		if len(res.Problems) > 0 {
			return fmt.Errorf("reload refused; the running configuration is unchanged")
		}
		return err
	}
	changes, _ := json.Marshal(res.Changes)
	_, err = fmt.Fprintf(stdout, "reloaded %s in %.3fs: %s\n", res.Config, res.Seconds, changes)
	return err
}

// RunUpgrade is `splicer upgrade [-admin ADDR] [-token-file FILE]`: the daemon starts its
// binary again and hands over; it prints both process IDs.
func RunUpgrade(ctx context.Context, args []string, stdout io.Writer) error {
	fs, cf := clientFlags("upgrade")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: splicer upgrade [-admin ADDR] [-token-file FILE] takes no arguments", ErrUsage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	res, err := c.Upgrade(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "upgraded: pid %d now serves; pid %d drains its connections and exits\n", res.NewPID, res.OldPID)
	return err
}
