package config

import (
	"net/netip"
	"strings"
	"testing"
)

// frontendTOML is a small valid frontend for the warning tests to add to.
const frontendTOML = `[[frontend]]
name = "pg"
listen = "127.0.0.1:6432"
`

// TestWarnings has one case per warning `splicer check` prints: each is
// the exact text, with the key and the line, and every other case proves
// the same config without the culprit warns of nothing.
func TestWarnings(t *testing.T) {
	roomy := Environment{NoFile: 1 << 20, PipeMaxSize: 1 << 20, RmemMax: 4 << 20, LocalAddrs: []netip.Addr{
		netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("::1")}}
	tight := roomy
	tight.NoFile = 20000
	tests := []struct {
		name string
		toml string
		env  Environment
		want []string
	}{
		{"nothing to say", frontendTOML + "[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n", roomy, nil},
		{"global max_connections beyond RLIMIT_NOFILE", "[global]\nworkers = 2\nmax_connections = 100000\n" + frontendTOML +
			"[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n", tight,
			[]string{`t.toml:3: global.max_connections: needs up to 202340 file descriptors (2 × 100000 TCP connections + 2 × 1024 pipes + ` +
				`64 × 2 workers + 64 admin connections + 100 spare) but RLIMIT_NOFILE is 20000 here: beyond it, accepting pauses (EMFILE) ` +
				`and clients wait. Raise the limit (LimitNOFILE= under systemd) or lower this`}},
		{"the default max_connections, unset, is located at [global]", "[global]\nworkers = 1\nmax_pipes = 0\n" + frontendTOML +
			"[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n", Environment{NoFile: 20000},
			[]string{`t.toml:1: global.max_connections: needs up to 20228 file descriptors (2 × 10000 TCP connections + 64 × 1 workers + ` +
				`64 admin connections + 100 spare) but RLIMIT_NOFILE is 20000 here: beyond it, accepting pauses (EMFILE) and clients wait. ` +
				`Raise the limit (LimitNOFILE= under systemd) or lower this`}},
		{"frontend caps and max_flows beyond RLIMIT_NOFILE", "[global]\nworkers = 1\nmax_pipes = 0\n[admin]\nlisten = \"\"\n" +
			frontendTOML + "max_connections = 2000\n[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n" +
			"[[frontend]]\nname = \"dns\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:5353\"\nmax_flows = 30000\n" +
			"[[frontend.backend]]\naddress = \"127.0.0.1:53\"\n", tight,
			[]string{`t.toml:16: frontend "dns": max_flows: needs up to 34164 file descriptors (2 × 2000 TCP connections + 1 × 30000 UDP flows + ` +
				`64 × 1 workers + 100 spare) but RLIMIT_NOFILE is 20000 here: beyond it, accepting pauses (EMFILE) and clients wait, ` +
				`and new UDP flows are dropped. Raise the limit (LimitNOFILE= under systemd) or lower this`}},
		{"the frontends' caps, when every one has a cap", "[global]\nworkers = 1\nmax_pipes = 0\nmax_connections = 50000\n" +
			frontendTOML + "max_connections = 9000\n[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n" +
			"[[frontend]]\nname = \"b\"\nlisten = \"127.0.0.1:6433\"\nmax_connections = 1000\n[[frontend.backend]]\naddress = \"127.0.0.1:5433\"\n", tight,
			[]string{`t.toml:8: frontend "pg": max_connections: needs up to 20228 file descriptors (2 × 10000 TCP connections + 64 × 1 workers + ` +
				`64 admin connections + 100 spare) but RLIMIT_NOFILE is 20000 here: beyond it, accepting pauses (EMFILE) and clients wait. ` +
				`Raise the limit (LimitNOFILE= under systemd) or lower this`}},
		{"backend is the frontend's own address", frontendTOML + "[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n" +
			"[[frontend.backend]]\naddress = \"127.0.0.1:6432\"\n", roomy,
			[]string{`t.toml:7: frontend "pg": backend[1].address: 127.0.0.1:6432 is this frontend's own listen address 127.0.0.1:6432: ` +
				`a client sent there comes back to the frontend, over and over`}},
		{"backend on loopback behind a wildcard listener", "[[frontend]]\nname = \"pg\"\nlisten = [\"0.0.0.0:6432\"]\n" +
			"[[frontend.backend]]\naddress = \"127.0.0.2:6432\"\n", Environment{},
			[]string{`t.toml:5: frontend "pg": backend[0].address: 127.0.0.2:6432 is this frontend's own listen address 0.0.0.0:6432: ` +
				`a client sent there comes back to the frontend, over and over`}},
		{"backend on an address of this host behind a wildcard listener", "[[frontend]]\nname = \"pg\"\nlisten = [\"0.0.0.0:6432\", \"[::]:6432\"]\n" +
			"[[frontend.backend]]\naddress = \"10.1.2.3:6432\"\n[[frontend.backend]]\naddress = \"10.1.2.4:6432\"\n" +
			"[[frontend.backend]]\naddress = \"10.1.2.3:6433\"\n", roomy,
			[]string{`t.toml:5: frontend "pg": backend[0].address: 10.1.2.3:6432 is an address of this host, on the port of this frontend's ` +
				`listener 0.0.0.0:6432: a client sent there comes back to the frontend, over and over`}},
		{"admin on a non-loopback address", "[admin]\nlisten = \"0.0.0.0:9090\"\nusers_file = \"/etc/splicer/users\"\n" +
			"tls_cert = \"/etc/splicer/admin.crt\"\ntls_key = { file = \"/etc/splicer/admin.key\" }\n" + frontendTOML +
			"[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n", roomy,
			[]string{`t.toml:2: admin.listen: 0.0.0.0:9090 is reachable from other hosts: whoever reaches it can try tokens ` +
				`(each source is limited to a few failures a minute); firewall it to the operators' networks, or use admin.socket`}},
		{"pipe_size beyond fs.pipe-max-size without CAP_SYS_RESOURCE", "[global]\npipe_size = \"4MiB\"\n" + frontendTOML +
			"[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n", roomy,
			[]string{`t.toml:2: global.pipe_size: 4MiB is above fs.pipe-max-size (1MiB), and this process lacks CAP_SYS_RESOURCE ` +
				`(it is not root): its pipes keep the kernel's default of 64KiB; raise the sysctl or lower pipe_size`}},
		{"pipe_size beyond fs.pipe-max-size with CAP_SYS_RESOURCE", "[global]\npipe_size = \"4MiB\"\n" + frontendTOML +
			"[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n", Environment{PipeMaxSize: 1 << 20, CapSysResource: true}, nil},
		{"receive_buffer beyond rmem_max without CAP_NET_ADMIN", "[[frontend]]\nname = \"dns\"\nprotocol = \"udp\"\n" +
			"listen = \"127.0.0.1:5353\"\nreceive_buffer = \"16MiB\"\n[[frontend.backend]]\naddress = \"127.0.0.1:53\"\n", roomy,
			[]string{`t.toml:5: frontend "dns": receive_buffer: 16MiB is above net.core.rmem_max (4MiB), and this process lacks ` +
				`CAP_NET_ADMIN: the kernel grants 4MiB; raise the sysctl or give the service CAP_NET_ADMIN (AmbientCapabilities=)`}},
		{"receive_buffer beyond rmem_max with CAP_NET_ADMIN", "[[frontend]]\nname = \"dns\"\nprotocol = \"udp\"\n" +
			"listen = \"127.0.0.1:5353\"\nreceive_buffer = \"16MiB\"\n[[frontend.backend]]\naddress = \"127.0.0.1:53\"\n",
			Environment{RmemMax: 4 << 20, CapNetAdmin: true}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse([]byte(tc.toml), "t.toml", &tc.env)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, w.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestInertKeyWarnings sets each key that has no effect where it is, and
// nothing else that would warn.
func TestInertKeyWarnings(t *testing.T) {
	backend := "[[frontend.backend]]\naddress = \"127.0.0.1:5432\"\n"
	tests := []struct {
		name, toml, want string
	}{
		{"pipe_size without pipes", "[global]\nmax_pipes = 0\npipe_size = \"512KiB\"\n" + frontendTOML + backend,
			`t.toml:3: global.pipe_size: has no effect: max_pipes = 0 turns splicing off, so no pipe is made`},
		{"maglev_table_size", frontendTOML + "maglev_table_size = 251\n" + backend,
			`t.toml:4: frontend "pg": maglev_table_size: has no effect: only the maglev strategy uses it (strategy is "roundrobin")`},
		{"queue_timeout", frontendTOML + "max_queue = 0\nqueue_timeout = \"1s\"\n" + backend,
			`t.toml:5: frontend "pg": queue_timeout: has no effect: max_queue = 0: no client ever waits in a queue`},
		{"keepalive_idle", frontendTOML + "tcp_keepalive = false\nkeepalive_idle = \"30s\"\n" + backend,
			`t.toml:5: frontend "pg": keepalive_idle: has no effect: tcp_keepalive = false: no keepalive probe is sent`},
		{"keepalive_count", frontendTOML + "tcp_keepalive = false\nkeepalive_count = 3\n" + backend,
			`t.toml:5: frontend "pg": keepalive_count: has no effect: tcp_keepalive = false: no keepalive probe is sent`},
		{"send on a tcp check", frontendTOML + "[frontend.health]\ncheck = \"tcp\"\nsend = \"PING\"\n" + backend,
			`t.toml:6: frontend "pg": health.send: has no effect: only check "send_expect" uses it (check is "tcp")`},
		{"expect_regex on a redis check", frontendTOML + "[frontend.health]\ncheck = \"redis\"\nexpect_regex = \"x\"\n" + backend,
			`t.toml:6: frontend "pg": health.expect_regex: has no effect: only check "send_expect" uses it (check is "redis")`},
		{"user on an http check", frontendTOML + "[frontend.health]\ncheck = \"http\"\nuser = \"probe\"\n" + backend,
			`t.toml:6: frontend "pg": health.user: has no effect: only checks "postgres", "mysql" and "redis" uses it (check is "http")`},
		{"database on a mysql check", frontendTOML + "[frontend.health]\ncheck = \"mysql\"\ndatabase = \"app\"\n" + backend,
			`t.toml:6: frontend "pg": health.database: has no effect: only check "postgres" uses it (check is "mysql")`},
		{"path on a postgres check", frontendTOML + "[frontend.health]\ncheck = \"postgres\"\npath = \"/x\"\n" + backend,
			`t.toml:6: frontend "pg": health.path: has no effect: only check "http" uses it (check is "postgres")`},
		{"status on a tcp check", frontendTOML + "[frontend.health]\nstatus = 204\n" + backend,
			`t.toml:5: frontend "pg": health.status: has no effect: only check "http" uses it (check is "tcp")`},
		{"rise with check none", frontendTOML + "[frontend.health]\ncheck = \"none\"\nrise = 3\n" + backend,
			`t.toml:6: frontend "pg": health.rise: has no effect: check "none" sends no probe`},
		{"timeout with check none", frontendTOML + "[frontend.health]\ncheck = \"none\"\ntimeout = \"3s\"\n" + backend,
			`t.toml:6: frontend "pg": health.timeout: has no effect: check "none" sends no probe`},
		{"interval with check none and passive_fall 0", frontendTOML + "[frontend.health]\ncheck = \"none\"\npassive_fall = 0\ninterval = \"3s\"\n" + backend,
			`t.toml:7: frontend "pg": health.interval: has no effect: check "none" sends no probe and passive_fall = 0 turns passive detection off`},
		{"interval with check none and down_interval", frontendTOML + "[frontend.health]\ncheck = \"none\"\ndown_interval = \"9s\"\ninterval = \"3s\"\n" + backend,
			`t.toml:7: frontend "pg": health.interval: has no effect: check "none" sends no probe; passive detection waits down_interval, which is set`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.toml), "t.toml")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, w.String())
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.want)
			}
		})
	}
	// Used where they are set: no warning.
	for _, ok := range []string{
		frontendTOML + "strategy = \"maglev\"\nmaglev_table_size = 251\n" + backend,
		frontendTOML + "max_queue = 5\nqueue_timeout = \"1s\"\n" + backend,
		frontendTOML + "keepalive_idle = \"30s\"\n" + backend,
		frontendTOML + "[frontend.health]\ncheck = \"none\"\ninterval = \"3s\"\n" + backend,
		frontendTOML + "[frontend.health]\ncheck = \"http\"\npath = \"/x\"\nstatus = 204\n" + backend,
		frontendTOML + "[frontend.health]\ncheck = \"postgres\"\nuser = \"u\"\ndatabase = \"d\"\n" + backend,
	} {
		cfg, err := Parse([]byte(ok), "t.toml")
		if err != nil || len(cfg.Warnings) != 0 {
			t.Errorf("%v %v for:\n%s", err, cfg.Warnings, ok)
		}
	}
}
