package config

import (
	"reflect"
	"runtime"
	"testing"
)

func TestParseCPUAffinity(t *testing.T) {
	cases := []struct {
		global      string
		wantWorkers int
		want        CPUAffinity
	}{
		{"", runtime.NumCPU(), CPUAffinity{}},
		{`cpu_affinity = ""`, runtime.NumCPU(), CPUAffinity{}},
		{`cpu_affinity = "auto"`, runtime.NumCPU(), CPUAffinity{Auto: true}},
		{"workers = 3\ncpu_affinity = \"auto\"", 3, CPUAffinity{Auto: true}},
		// Workers left at 0 run one per CPU listed.
		{`cpu_affinity = "0-3,8"`, 5, CPUAffinity{CPUs: []int{0, 1, 2, 3, 8}}},
		{"workers = 2\ncpu_affinity = \" 3, 1 \"", 2, CPUAffinity{CPUs: []int{3, 1}}},
		{`cpu_affinity = "1023"`, 1, CPUAffinity{CPUs: []int{1023}}},
	}
	for _, tc := range cases {
		cfg, err := Parse([]byte("[global]\n"+tc.global+"\n"+oneFrontend), "c.toml")
		if err != nil {
			t.Errorf("%q: %v", tc.global, err)
			continue
		}
		if g := cfg.Global; g.Workers != tc.wantWorkers || !reflect.DeepEqual(g.CPUAffinity, tc.want) {
			t.Errorf("%q: workers %d, affinity %+v; want %d, %+v", tc.global, g.Workers, g.CPUAffinity, tc.wantWorkers, tc.want)
		}
	}
}

func TestParseBadCPUAffinity(t *testing.T) {
	cases := []struct{ global, want string }{
		{`cpu_affinity = "0-"`, `c.toml:2: global.cpu_affinity: invalid CPU list "0-": write CPU numbers and ranges such as "0-3,8", or "auto"`},
		{`cpu_affinity = "one"`, `c.toml:2: global.cpu_affinity: invalid CPU list "one": write CPU numbers and ranges such as "0-3,8", or "auto"`},
		{`cpu_affinity = "0,,1"`, `c.toml:2: global.cpu_affinity: invalid CPU list "0,,1": write CPU numbers and ranges such as "0-3,8", or "auto"`},
		{`cpu_affinity = "-1"`, `c.toml:2: global.cpu_affinity: invalid CPU list "-1": write CPU numbers and ranges such as "0-3,8", or "auto"`},
		{`cpu_affinity = "3-1"`, `c.toml:2: global.cpu_affinity: CPU range "3-1" in "3-1" runs backwards; write the lower CPU first`},
		{`cpu_affinity = "0-2,1"`, `c.toml:2: global.cpu_affinity: CPU 1 is listed twice in "0-2,1"; give each worker its own CPU`},
		{`cpu_affinity = "1024"`, `c.toml:2: global.cpu_affinity: CPU 1024 in "1024" is above 1023, the highest CPU number splicer can pin to`},
		{`cpu_affinity = 2`, `c.toml:2: global.cpu_affinity: must be a string, got an integer`},
		{"workers = 4\ncpu_affinity = \"0-1\"", `c.toml:3: global.cpu_affinity: lists 2 CPUs for 4 workers: list one CPU per worker, leave workers at 0 to run one per CPU listed, or write "auto"`},
	}
	for _, tc := range cases {
		_, err := Parse([]byte("[global]\n"+tc.global+"\n"+oneFrontend), "c.toml")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.global, err, tc.want)
		}
	}
}

func TestCPUListRoundTrip(t *testing.T) {
	cases := []struct {
		in   string
		cpus []int
		out  string
	}{
		{"0", []int{0}, "0"},
		{"0-3,8", []int{0, 1, 2, 3, 8}, "0-3,8"},
		{"0,1,2", []int{0, 1, 2}, "0-2"},
		{"4,2-3", []int{4, 2, 3}, "4,2-3"},
		{"7-7", []int{7}, "7"},
	}
	for _, tc := range cases {
		cpus, err := ParseCPUList(tc.in)
		if err != nil || !reflect.DeepEqual(cpus, tc.cpus) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", tc.in, cpus, err, tc.cpus)
		}
		if got := FormatCPUList(cpus); got != tc.out {
			t.Errorf("FormatCPUList(%v) = %q, want %q", cpus, got, tc.out)
		}
	}
	if s := (CPUAffinity{Auto: true}).String(); s != "auto" {
		t.Errorf("auto reads %q", s)
	}
	if s := (CPUAffinity{}).String(); s != "" {
		t.Errorf("no affinity reads %q", s)
	}
}

func TestBuilderCPUAffinity(t *testing.T) {
	cfg, err := New().CPUAffinity("2,0").Frontend("fe").Listen("127.0.0.1:0").Backend("127.0.0.1:1", 1).Build()
	if err != nil {
		t.Fatal(err)
	}
	if want := (CPUAffinity{CPUs: []int{2, 0}}); !reflect.DeepEqual(cfg.Global.CPUAffinity, want) || cfg.Global.Workers != 2 {
		t.Errorf("affinity %+v, workers %d; want %+v, 2", cfg.Global.CPUAffinity, cfg.Global.Workers, want)
	}
}
