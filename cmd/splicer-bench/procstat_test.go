package main

import (
	"os"
	"runtime"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			line: "1234 (haproxy) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 5000 1000 200",
			want: procStat{ppid: 1, ticks: 325},
		},
		{
			name: "command with spaces and parentheses",
			line: "77 (nginx: worker (x) ) R 70 70 70 0 -1 0 0 0 0 0 12 3 0 0 20 0 1 0 1 1 1",
			want: procStat{ppid: 70, ticks: 15},
		},
		{name: "no parenthesis", line: "77 nginx R 70", wantErr: true},
		{name: "short", line: "77 (x) R 70 70", wantErr: true},
		{name: "not a number", line: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ab 1 0 0 20 0 1 0 1 1 1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.line))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("parseStat = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestKiloField(t *testing.T) {
	status := "Name:\tnginx\nVmPeak:\t  20000 kB\nVmRSS:\t    5120 kB\nThreads:\t1\n"
	tests := []struct {
		name    string
		text    string
		field   string
		want    int64
		wantErr bool
	}{
		{"found", status, "VmRSS:", 5120, false},
		{"prefix of another field is not it", status, "Vm", 0, true},
		{"missing", status, "VmSwap:", 0, true},
		{"no unit", "Slab: 12\n", "Slab:", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kiloField([]byte(tt.text), tt.field)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("kiloField = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSampleSelf(t *testing.T) {
	pid := os.Getpid()
	tree, err := processTree(pid)
	if err != nil {
		t.Fatal(err)
	}
	if tree[0] != pid {
		t.Fatalf("processTree starts with %d, want %d", tree[0], pid)
	}
	// Other tests' connections and Go's pooled splice pipes may still be
	// closing in the background and change the count between two samples;
	// one of a few attempts must see exactly the file closed here.
	var before, after usage
	var d int
	for attempt := 0; attempt < 10; attempt++ {
		runtime.GC()
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		if before, err = sampleProcess(pid); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if after, err = sampleProcess(pid); err != nil {
			t.Fatal(err)
		}
		if d = before.fds - after.fds; d == 1 {
			break
		}
	}
	if d != 1 {
		t.Errorf("closing one file changed the fd count by %d, want 1", d)
	}
	if before.rss <= 0 || before.cpu < 0 || after.cpu < before.cpu {
		t.Errorf("implausible samples %+v then %+v", before, after)
	}
	if got := after.sub(before); got.cpu != after.cpu-before.cpu || got.fds != -1 {
		t.Errorf("sub = %+v", got)
	}
	if _, err := kernelSlab(); err != nil {
		t.Errorf("kernelSlab: %v", err)
	}
}
