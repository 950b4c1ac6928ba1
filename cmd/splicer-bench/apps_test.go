package main

import (
	"bufio"
	"reflect"
	"strings"
	"testing"
)

func TestParseRedisCSV(t *testing.T) {
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","1149425.38","0.670","0.152","0.647","0.951","1.087","2.103"
"GET","1298701.25","0.590","0.120","0.575","0.839","0.967","1.455"
`
	got, err := parseRedisCSV([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]float64{"SET": 1149425.38, "GET": 1298701.25}; !reflect.DeepEqual(got, want) {
		t.Errorf("rates %v, want %v", got, want)
	}
	if _, err := parseRedisCSV([]byte(`"SET","fast"`)); err == nil || !strings.Contains(err.Error(), `SET rate "fast"`) {
		t.Errorf("a bad rate: %v", err)
	}
}

func TestParsePgbench(t *testing.T) {
	out := `transaction type: <builtin: select only>
scaling factor: 1
query mode: prepared
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 5 s
number of transactions actually processed: 152345
number of failed transactions: 0 (0.000%)
latency average = 0.525 ms
initial connection time = 12.345 ms
tps = 30467.123456 (without initial connection time)
`
	tps, txs, err := parsePgbench([]byte(out))
	if err != nil || tps != 30467.123456 || txs != 152345 {
		t.Errorf("tps %v, transactions %d, %v; want 30467.123456, 152345", tps, txs, err)
	}
	if _, _, err := parsePgbench([]byte("pgbench: error: connection refused\n")); err == nil {
		t.Error("an output without a summary parsed")
	}
}

func TestParsePickBench(t *testing.T) {
	out := `goos: linux
BenchmarkPick/roundrobin/n=10/serial-2         	100000000	        11.52 ns/op	       0 B/op	       0 allocs/op
BenchmarkPick/roundrobin/n=10/parallel-2       	200000000	         6.10 ns/op	       0 B/op	       0 allocs/op
BenchmarkPick/maglev/n=1000/serial             	 50000000	        23.4 ns/op
BenchmarkRebuild/roundrobin/n=1024/weights=equal-2   	    1000	   1234567 ns/op
PASS
`
	got, err := parsePickBench(bufio.NewScanner(strings.NewReader(out)))
	if err != nil {
		t.Fatal(err)
	}
	want := []pickResult{
		{"roundrobin", 10, "serial", 11.52},
		{"roundrobin", 10, "parallel", 6.10},
		{"maglev", 1000, "serial", 23.4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("picks %+v, want %+v", got, want)
	}
}
