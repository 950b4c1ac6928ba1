package stats

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// HistorySeconds is how far back the daemon's history reaches: one sample
// a second for the last ten minutes.
const HistorySeconds = 600

// FrontendErrorKinds returns the keys of the Series.Errors of a frontend of
// protocol ("tcp" or "udp"), in display order, as a fresh slice: for TCP
// the refusal reasons of RefusalReasons, with per_client and rate_limit as
// one kind, client_limits (six kinds keep a history sample small); for UDP
// "dropped", the datagrams dropped for any reason of DropReasons (a UDP
// frontend refuses nothing: it drops).
func FrontendErrorKinds(protocol string) []string {
	if protocol == "udp" {
		return []string{"dropped"}
	}
	return []string{"no_backend", "connect_failed", "queue_full", "queue_timeout", "access_list", "client_limits"}
}

// BackendErrorKinds returns the keys of a backend's Series.Errors, in
// display order, as a fresh slice: the connect failures of
// ConnectFailureReasons, then "broken", the established connections the
// backend broke (BackendStats.Resets).
func BackendErrorKinds() []string { return append(ConnectFailureReasons(), "broken") }

// History is the answer to GET /api/v1/history: per-second samples of
// every frontend and backend, oldest first.
type History struct {
	// Interval is the time between samples, in seconds.
	Interval float64 `json:"interval_seconds"`
	// Times holds the time of each sample, in Unix milliseconds; every
	// Series is aligned to it. A sample's rates are over the interval
	// that ends at its time and starts at the previous sample's, or at
	// From for the first.
	Times     []int64           `json:"times"`
	From      int64             `json:"from"`
	Frontends []FrontendHistory `json:"frontends"`
}

// FrontendHistory is the history of one frontend: its own series, the
// sum over its backends and what only a frontend sees (queue, refusals,
// drops), and each of its backends'.
type FrontendHistory struct {
	Name     string           `json:"name"`
	Protocol string           `json:"protocol"`
	Series   Series           `json:"series"`
	Backends []BackendHistory `json:"backends"`
}

// BackendHistory is the history of one backend.
type BackendHistory struct {
	Name   string `json:"name"`
	Series Series `json:"series"`
}

// Series holds one frontend's or backend's samples, one per entry of
// History.Times from index Start on: a series that began later than the
// window (a backend added by a reload) is shorter, never padded. Rates are
// per second over the interval that ends at the sample; Active and Queued
// are the level at the sample.
type Series struct {
	Start    int    `json:"start"`
	Conns    Column `json:"conns_per_second"` // new connections (UDP: flows)
	BytesIn  Column `json:"bytes_in_per_second"`
	BytesOut Column `json:"bytes_out_per_second"`
	Active   Column `json:"active"`
	Queued   Column `json:"queued"` // clients waiting for a slot; frontends only
	// Errors holds one column per kind of FrontendErrorKinds or
	// BackendErrorKinds, every kind present.
	Errors map[string]Column `json:"errors_per_second"`
	// ConnectP50 and ConnectP99 estimate the connect time of the connects
	// made in the interval, in seconds (a frontend's over all its
	// backends); NaN, null in JSON, for an interval without one.
	ConnectP50 Column `json:"connect_p50_seconds"`
	ConnectP99 Column `json:"connect_p99_seconds"`
}

// Len is the number of samples in s.
func (s *Series) Len() int { return len(s.Conns) }

// Column is one series of samples. Values are kept at float32 precision,
// which is what the history stores; in JSON each is the shortest decimal
// that reads back as the same float32, and NaN ("no value") is null.
type Column []float32

// MarshalJSON implements json.Marshaler.
func (c Column) MarshalJSON() ([]byte, error) {
	if c == nil {
		return []byte("[]"), nil
	}
	b := make([]byte, 0, 2+len(c)*6)
	b = append(b, '[')
	for i, v := range c {
		if i > 0 {
			b = append(b, ',')
		}
		switch {
		case math.IsNaN(float64(v)):
			b = append(b, "null"...)
		case math.IsInf(float64(v), 0):
			return nil, errors.New("stats: infinite value in a history column")
		default:
			b = strconv.AppendFloat(b, float64(v), 'f', -1, 32)
		}
	}
	return append(b, ']'), nil
}

// UnmarshalJSON implements json.Unmarshaler; null reads as NaN.
func (c *Column) UnmarshalJSON(data []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	out := make(Column, len(raw))
	for i, r := range raw {
		if bytes.Equal(r, []byte("null")) {
			out[i] = float32(math.NaN())
			continue
		}
		v, err := strconv.ParseFloat(string(r), 32)
		if err != nil {
			return err
		}
		out[i] = float32(v)
	}
	*c = out
	return nil
}

// Rates are a frontend's or backend's recent figures from the history:
// the latest second and the highest second of the window. They are absent
// until the daemon has two samples.
type Rates struct {
	Now  Point `json:"now"`
	Peak Point `json:"peak"`
	// Window is the time Peak covers, in seconds: up to HistorySeconds.
	Window float64 `json:"window_seconds"`
}

// Point is one second of a Series, with the errors summed over kinds. In
// Rates.Peak each field is the highest of its own column, not of one
// second; a connect time with no connect in the window is 0.
type Point struct {
	Conns      float64 `json:"conns_per_second"`
	BytesIn    float64 `json:"bytes_in_per_second"`
	BytesOut   float64 `json:"bytes_out_per_second"`
	Active     float64 `json:"active"`
	Queued     float64 `json:"queued"`
	Errors     float64 `json:"errors_per_second"`
	ConnectP50 float64 `json:"connect_p50_seconds"`
	ConnectP99 float64 `json:"connect_p99_seconds"`
}
