package main

import (
	"strings"
	"testing"
)

func TestParseIperf(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    iperfResult
		wantErr string
	}{
		{
			name: "result",
			json: `{"start":{},"intervals":[],"end":{"sum_sent":{"bytes":5,"bits_per_second":1},
				"sum_received":{"start":0,"end":5.0,"seconds":5.0,"bytes":25000000000,"bits_per_second":4.0e10,"sender":true}}}`,
			want: iperfResult{bitsPerSecond: 4e10, bytes: 25_000_000_000},
		},
		{
			name:    "error reported in JSON",
			json:    `{"start":{"connected":[]},"intervals":[],"end":{},"error":"unable to connect to server: Connection refused"}`,
			wantErr: "iperf3: unable to connect to server: Connection refused",
		},
		{
			name:    "no sum_received",
			json:    `{"end":{"sum_sent":{"bytes":1}}}`,
			wantErr: "iperf3 JSON has no end.sum_received",
		},
		{
			name:    "not JSON",
			json:    "iperf3: error - the server is busy running a test",
			wantErr: "parse iperf3 JSON",
		},
		{
			name:    "empty output",
			json:    "",
			wantErr: "parse iperf3 JSON",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIperf([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("parseIperf error = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseIperf: %v", err)
			}
			if got != tt.want {
				t.Fatalf("parseIperf = %+v, want %+v", got, tt.want)
			}
			if g := got.gbits(); g != 200 {
				t.Fatalf("gbits = %v, want 200", g)
			}
		})
	}
}
