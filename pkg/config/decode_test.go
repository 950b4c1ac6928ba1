package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// badConfigs are invalid configs with the exact report each must produce.
// They double as seeds for FuzzLoad.
var badConfigs = []struct {
	name string
	toml string
	want []string
}{
	{
		name: "typo in a backend key",
		toml: `
[[frontend]]
name = "pg"
listen = "127.0.0.1:6432"

  [[frontend.backend]]
  address = "127.0.0.1:5432"

  [[frontend.backend]]
  address = "127.0.0.1:5433"
  wieght = 2
`,
		want: []string{`config.toml:11: frontend[0].backend[1]: unknown key "wieght" (did you mean "weight"?)`},
	},
	{
		name: "typo in a global key",
		toml: `
[global]
wrkers = 2
` + demoFrontend,
		want: []string{`config.toml:3: global: unknown key "wrkers" (did you mean "workers"?)`},
	},
	{
		name: "unknown table",
		toml: demoFrontend + `
[helth]
check = "tcp"
`,
		want: []string{`config.toml:7: unknown key "helth"`},
	},
	{
		name: "key differing only in case",
		toml: `
[[frontend]]
Name = "demo"
listen = "127.0.0.1:7000"
[[frontend.backend]]
address = "127.0.0.1:7001"
`,
		// The decoder matches keys case-insensitively, so name is set too.
		want: []string{`config.toml:3: frontend[0]: unknown key "Name" (did you mean "name"?)`},
	},
	{
		name: "unknown key in an inline table has no line",
		toml: `
[[frontend]]
name = "demo"
listen = "127.0.0.1:7000"
backend = [{ address = "127.0.0.1:7001", weigth = 1 }]
`,
		want: []string{`config.toml: frontend.backend: unknown key "weigth" (did you mean "weight"?)`},
	},
	{
		name: "syntax error",
		toml: `
[global]
workers = 2
max_connections = = 5
`,
		want: []string{`config.toml:4: expected value but found '=' instead`},
	},
	{
		name: "key defined twice",
		toml: `
[global]
workers = 2
workers = 3
`,
		want: []string{`config.toml:4: Key 'global.workers' has already been defined.`},
	},
	{
		name: "frontend as a table instead of an array of tables",
		toml: `
[frontend]
name = "demo"
`,
		want: []string{`config.toml:2: frontend: must be an array of tables ([[frontend]]), got a table`},
	},
	{
		name: "backend table without a frontend",
		toml: `
[[frontend.backend]]
address = "127.0.0.1:7001"
`,
		want: []string{`config.toml:2: frontend: must be an array of tables ([[frontend]]), got a table`},
	},
	{
		name: "bad duration",
		toml: demoFrontend + `connect_timeout = "5"
`,
		want: []string{`config.toml:6: frontend "demo": connect_timeout: invalid duration "5"; write a number with a unit, such as "500ms", "2s" or "1h"`},
	},
	{
		name: "duration given as an integer",
		toml: `
[global]
shutdown_timeout = 30
` + demoFrontend,
		want: []string{`config.toml:3: global.shutdown_timeout: must be a duration string such as "500ms" or "2s", got an integer`},
	},
	{
		name: "bad size unit",
		toml: `
[global]
pipe_size = "64kb"
` + demoFrontend,
		want: []string{`config.toml:3: global.pipe_size: invalid size "64kb"; write a number of bytes, or a number with a unit: B, KB, MB, GB, KiB, MiB, GiB`},
	},
	{
		name: "sizes out of range",
		toml: `
[global]
pipe_size = "1KiB"
buffer_size = 1000
` + demoFrontend,
		want: []string{
			`config.toml:3: global.pipe_size: must be between 4KiB and 1GiB, got 1KiB`,
			`config.toml:4: global.buffer_size: must be between 4KiB and 64MiB, got 1000B`,
		},
	},
	{
		name: "integer given as a string",
		toml: `
[[frontend]]
name = "demo"
listen = "127.0.0.1:7000"
  [[frontend.backend]]
  address = "127.0.0.1:7001"
  weight = "2"
`,
		want: []string{`config.toml:7: frontend "demo": backend[0].weight: must be an integer, got a string`},
	},
	{
		name: "no frontends",
		toml: `
[log]
level = "debug"
`,
		want: []string{`config.toml: frontend: at least one [[frontend]] is required`},
	},
	{
		name: "frontend names missing, duplicated, malformed and too long",
		toml: `
[[frontend]]
listen = "127.0.0.1:7000"
[[frontend.backend]]
address = "127.0.0.1:7001"

[[frontend]]
name = "dup"
listen = "127.0.0.1:7002"
[[frontend.backend]]
address = "127.0.0.1:7001"

[[frontend]]
name = "dup"
listen = "127.0.0.1:7003"
[[frontend.backend]]
address = "127.0.0.1:7001"

[[frontend]]
name = "my service"
listen = "127.0.0.1:7004"
[[frontend.backend]]
address = "127.0.0.1:7001"

[[frontend]]
name = "` + strings.Repeat("x", 65) + `"
listen = "127.0.0.1:7005"
[[frontend.backend]]
address = "127.0.0.1:7001"
`,
		want: []string{
			`config.toml:2: frontend[0]: name: required: every frontend needs a unique name`,
			`config.toml:14: frontend "dup": name: "dup" is already used by frontend[1]`,
			`config.toml:20: frontend "my service": name: must be 1 to 64 characters from A-Z a-z 0-9 _ . -, got "my service"`,
			`config.toml:26: frontend "` + strings.Repeat("x", 65) + `": name: must be 1 to 64 characters from A-Z a-z 0-9 _ . -, got "` + strings.Repeat("x", 65) + `"`,
		},
	},
	{
		name: "listen missing",
		toml: `
[[frontend]]
name = "demo"
[[frontend.backend]]
address = "127.0.0.1:7001"
`,
		want: []string{`config.toml:2: frontend "demo": listen: required: at least one IP:port, such as "127.0.0.1:7000"`},
	},
	{
		name: "listen addresses that do not parse",
		toml: `
[[frontend]]
name = "demo"
listen = [
  "localhost:7000",
  "::1:7000",
  "127.0.0.1:70000",
  "127.0.0.1",
  ":7000",
  "127.0.0.1:http",
]
[[frontend.backend]]
address = "127.0.0.1:7001"
`,
		want: []string{
			`config.toml:4: frontend "demo": listen: "localhost:7000": "localhost" is not an IP address; IP literals are required, hostnames are not resolved`,
			`config.toml:4: frontend "demo": listen: "::1:7000" has no port; write IP:port, with IPv6 in brackets, such as "[::1]:7000"`,
			`config.toml:4: frontend "demo": listen: "127.0.0.1:70000": port 70000 is out of range 0-65535`,
			`config.toml:4: frontend "demo": listen: "127.0.0.1" has no port; write IP:port, with IPv6 in brackets, such as "[::1]:7000"`,
			`config.toml:4: frontend "demo": listen: ":7000" has no IP address; use 0.0.0.0 or [::] for all addresses`,
			`config.toml:4: frontend "demo": listen: "127.0.0.1:http": port "http" is not a number`,
		},
	},
	{
		name: "listen of the wrong type",
		toml: `
[[frontend]]
name = "demo"
listen = 7000
[[frontend.backend]]
address = "127.0.0.1:7001"
`,
		want: []string{`config.toml:4: frontend "demo": listen: must be a string or an array of strings, got an integer`},
	},
	{
		name: "listen conflicts within and across frontends",
		toml: `
[[frontend]]
name = "a"
listen = ["127.0.0.1:7000", "127.0.0.1:7000", "[::1]:7100"]
[[frontend.backend]]
address = "127.0.0.1:7001"

[[frontend]]
name = "b"
listen = ["0.0.0.0:7000", "[::]:7100", "0.0.0.0:0", "127.0.0.1:0"]
[[frontend.backend]]
address = "127.0.0.1:7001"

[[frontend]]
name = "c"
protocol = "udp"
listen = "0.0.0.0:7000"
[[frontend.backend]]
address = "127.0.0.1:7001"
`,
		want: []string{
			`config.toml:4: frontend "a": listen: 127.0.0.1:7000 is listed twice`,
			`config.toml:10: frontend "b": listen: 0.0.0.0:7000 conflicts with 127.0.0.1:7000 of frontend "a"`,
			`config.toml:10: frontend "b": listen: [::]:7100 conflicts with [::1]:7100 of frontend "a"`,
		},
	},
	{
		name: "listen conflicts with the admin port",
		toml: `
[admin]
listen = "127.0.0.1:9090"

[[frontend]]
name = "demo"
listen = "0.0.0.0:9090"
[[frontend.backend]]
address = "127.0.0.1:7001"
`,
		want: []string{`config.toml:7: frontend "demo": listen: 0.0.0.0:9090 conflicts with admin.listen 127.0.0.1:9090`},
	},
	{
		name: "unknown protocol, strategy, on_down and check",
		toml: demoFrontend + `protocol = "sctp"
strategy = "random"
on_down = "drain"
health = { check = "ping" }
`,
		want: []string{
			`config.toml:6: frontend "demo": protocol: must be one of tcp, udp; got "sctp"`,
			`config.toml:7: frontend "demo": strategy: must be one of roundrobin, leastconn, p2c, maglev; got "random"`,
			`config.toml:8: frontend "demo": on_down: must be one of keep, close; got "drain"`,
			`config.toml:9: frontend "demo": health.check: must be one of none, tcp, send_expect, postgres, mysql, redis, http; got "ping"`,
		},
	},
	{
		name: "maglev table size not prime",
		toml: demoFrontend + `strategy = "maglev"
maglev_table_size = 65536
`,
		want: []string{`config.toml:7: frontend "demo": maglev_table_size: must be a prime between 2 and 1048573, got 65536 (the next prime is 65537)`},
	},
	{
		name: "maglev table size out of range and too small",
		toml: `
[[frontend]]
name = "a"
listen = "127.0.0.1:7000"
maglev_table_size = 2000000
[[frontend.backend]]
address = "127.0.0.1:7001"

[[frontend]]
name = "b"
listen = "127.0.0.1:7100"
strategy = "maglev"
maglev_table_size = 2
[[frontend.backend]]
address = "127.0.0.1:7001"
[[frontend.backend]]
address = "127.0.0.1:7002"
[[frontend.backend]]
address = "127.0.0.1:7003"
`,
		want: []string{
			`config.toml:5: frontend "a": maglev_table_size: must be a prime between 2 and 1048573, got 2000000`,
			`config.toml:13: frontend "b": maglev_table_size: must be at least the number of backends (3), got 2`,
		},
	},
	{
		name: "durations that must be positive",
		toml: demoFrontend + `connect_timeout = "0s"
idle_timeout = "-1m"
slow_start = "-1s"
keepalive_idle = "500ms"
  [frontend.health]
  interval = "0s"
  fast_interval = "-2s"
`,
		want: []string{
			`config.toml:6: frontend "demo": connect_timeout: must be positive, got 0s`,
			`config.toml:7: frontend "demo": idle_timeout: must be positive, got -1m0s`,
			`config.toml:8: frontend "demo": slow_start: must not be negative, got -1s`,
			`config.toml:9: frontend "demo": keepalive_idle: must be between 1s and 9h6m7s, got 500ms`,
			`config.toml:11: frontend "demo": health.interval: must be positive, got 0s`,
			`config.toml:12: frontend "demo": health.fast_interval: must be positive, got -2s`,
		},
	},
	{
		name: "counts out of range",
		toml: demoFrontend + `max_connections = -1
max_queue = -5
retries = 11
keepalive_count = 0
max_connections_per_client = -1
  [frontend.health]
  rise = 0
  fall = 101
  passive_fall = -1
  port = 70000
`,
		want: []string{
			`config.toml:6: frontend "demo": max_connections: must be at least 0, got -1`,
			`config.toml:7: frontend "demo": max_queue: must be at least 0, got -5`,
			`config.toml:8: frontend "demo": retries: must be between 0 and 10, got 11`,
			`config.toml:9: frontend "demo": keepalive_count: must be between 1 and 127, got 0`,
			`config.toml:10: frontend "demo": max_connections_per_client: must be at least 0, got -1`,
			`config.toml:12: frontend "demo": health.rise: must be between 1 and 100, got 0`,
			`config.toml:13: frontend "demo": health.fall: must be between 1 and 100, got 101`,
			`config.toml:14: frontend "demo": health.passive_fall: must be between 0 and 100, got -1`,
			`config.toml:15: frontend "demo": health.port: must be between 0 and 65535, got 70000`,
		},
	},
	{
		name: "backend weights, caps and addresses",
		toml: `
[[frontend]]
name = "pg"
listen = "127.0.0.1:6432"
  [[frontend.backend]]
  address = "127.0.0.1:5432"
  weight = 0
  [[frontend.backend]]
  address = "127.0.0.1:5433"
  weight = 257
  max_connections = -1
  [[frontend.backend]]
  address = "127.0.0.1:5432"
  [[frontend.backend]]
  address = "0.0.0.0:5432"
  [[frontend.backend]]
  address = "127.0.0.1:0"
  [[frontend.backend]]
  weight = 1
  [[frontend.backend]]
  address = "db1.internal"
  [[frontend.backend]]
  address = "db_1!:5432"
  [[frontend.backend]]
  address = "db1:0"
  [[frontend.backend]]
  address = "DB2.internal.:5432"
  [[frontend.backend]]
  address = "db2.internal:5432"
`,
		want: []string{
			`config.toml:7: frontend "pg": backend[0].weight: must be between 1 and 256, got 0`,
			`config.toml:10: frontend "pg": backend[1].weight: must be between 1 and 256, got 257`,
			`config.toml:11: frontend "pg": backend[1].max_connections: must be at least 0, got -1`,
			`config.toml:13: frontend "pg": backend[2].address: 127.0.0.1:5432 is already used by backend[0]`,
			`config.toml:15: frontend "pg": backend[3].address: 0.0.0.0 is not a destination; give the backend's own IP`,
			`config.toml:17: frontend "pg": backend[4].address: port must be between 1 and 65535, got 0`,
			`config.toml:18: frontend "pg": backend[5].address: required: the backend's IP:port, such as "10.0.0.11:5432"`,
			`config.toml:21: frontend "pg": backend[6].address: "db1.internal" has no port; write host:port, such as "db1.internal:5432"`,
			`config.toml:23: frontend "pg": backend[7].address: "db_1!:5432": "db_1!" is not a DNS name: '!' is not a letter, digit, '-' or '_'`,
			`config.toml:25: frontend "pg": backend[8].address: "db1:0": port "0" is not a number from 1 to 65535`,
			`config.toml:29: frontend "pg": backend[10].address: db2.internal:5432 is already used by backend[9]`,
		},
	},
	{
		name: "backend names empty and duplicated",
		toml: `
[[frontend]]
name = "pg"
listen = "127.0.0.1:6432"
  [[frontend.backend]]
  address = "127.0.0.1:5432"
  name = "primary"
  [[frontend.backend]]
  address = "127.0.0.1:5433"
  name = "primary"
  [[frontend.backend]]
  address = "127.0.0.1:5434"
  name = ""
`,
		want: []string{
			`config.toml:10: frontend "pg": backend[1].name: "primary" is already used by backend[0]`,
			`config.toml:13: frontend "pg": backend[2].name: must not be empty`,
		},
	},
	{
		name: "no backends",
		toml: `
[[frontend]]
name = "demo"
listen = "127.0.0.1:7000"
`,
		want: []string{`config.toml:2: frontend "demo": backend: at least one [[frontend.backend]] is required`},
	},
	{
		name: "every backend a backup",
		toml: `
[[frontend]]
name = "demo"
listen = "127.0.0.1:7000"
  [[frontend.backend]]
  address = "127.0.0.1:7001"
  backup = true
`,
		want: []string{`config.toml:2: frontend "demo": backend: every backend is a backup; at least one must be primary`},
	},
	{
		name: "allow and deny entries that are not CIDRs",
		toml: demoFrontend + `allow = ["10.0.0.0/8", "10.1.2.3/16", "192.168.1.300"]
deny = "fe80::1%eth0"
`,
		want: []string{
			`config.toml:6: frontend "demo": allow: "10.1.2.3/16" has host bits set; did you mean "10.1.0.0/16"?`,
			`config.toml:6: frontend "demo": allow: "192.168.1.300" is not an IP address or CIDR prefix`,
			`config.toml:7: frontend "demo": deny: "fe80::1%eth0" has a zone; client addresses are matched without zones`,
		},
	},
	{
		name: "global and log values out of range",
		toml: `
[global]
workers = 1025
max_connections = 0
max_pipes = -1
shutdown_timeout = "0s"

[log]
level = "verbose"
format = "text"
` + demoFrontend,
		want: []string{
			`config.toml:3: global.workers: must be between 0 and 1024, got 1025`,
			`config.toml:4: global.max_connections: must be at least 1, got 0`,
			`config.toml:5: global.max_pipes: must be at least 0, got -1`,
			`config.toml:6: global.shutdown_timeout: must be positive, got 0s`,
			`config.toml:9: log.level: must be one of debug, info, warn, error; got "verbose"`,
			`config.toml:10: log.format: must be one of json, console; got "text"`,
		},
	},
	{
		name: "admin listen unparsable",
		toml: `
[admin]
listen = "localhost:9090"
` + demoFrontend,
		want: []string{`config.toml:3: admin.listen: "localhost:9090": "localhost" is not an IP address; IP literals are required, hostnames are not resolved`},
	},
	{
		name: "send_expect without send or expect",
		toml: demoFrontend + `  [frontend.health]
  check = "send_expect"
`,
		want: []string{
			`config.toml:7: frontend "demo": health.check: "send_expect" needs send or send_hex`,
			`config.toml:7: frontend "demo": health.check: "send_expect" needs expect or expect_regex`,
		},
	},
	{
		name: "send_expect with both forms, bad hex and bad regex",
		toml: demoFrontend + `  [frontend.health]
  check = "send_expect"
  send = "PING\r\n"
  send_hex = "50494e4g"
  expect = "+PONG"
  expect_regex = "^\\+PONG("
`,
		want: []string{
			`config.toml:9: frontend "demo": health.send_hex: set send or send_hex, not both`,
			`config.toml:9: frontend "demo": health.send_hex: not valid hex: encoding/hex: invalid byte: U+0067 'g'`,
			"config.toml:11: frontend \"demo\": health.expect_regex: set expect or expect_regex, not both",
			"config.toml:11: frontend \"demo\": health.expect_regex: invalid regular expression: error parsing regexp: missing closing ): `^\\+PONG(`",
		},
	},
	{
		name: "http, postgres and redis check options",
		toml: demoFrontend + `  [frontend.health]
  check = "postgres"
  user = ""
  path = "healthz"
  status = 600
  password_file = "/etc/splicer/redis.pw"
  password_env = "REDIS_PASSWORD"
`,
		want: []string{
			`config.toml:8: frontend "demo": health.user: must not be empty for check "postgres"`,
			`config.toml:9: frontend "demo": health.path: must start with "/", got "healthz"`,
			`config.toml:10: frontend "demo": health.status: must be between 100 and 599, got 600`,
			`config.toml:12: frontend "demo": health.password_env: set password_file or password_env, not both`,
		},
	},
	{
		name: "udp frontend with tcp-only options",
		toml: `
[[frontend]]
name = "dns"
protocol = "udp"
listen = "127.0.0.1:5353"
retries = 1
max_queue = 10
queue_timeout = "1s"
half_close_timeout = "1s"
tcp_keepalive = false
keepalive_idle = "10s"
keepalive_interval = "10s"
keepalive_count = 3
on_down = "close"
max_connections_per_client = 5
max_connections = 10
connect_timeout = "1s"
  [frontend.health]
  check = "redis"
  [[frontend.backend]]
  address = "127.0.0.1:53"
`,
		want: []string{
			`config.toml:6: frontend "dns": retries: only applies to tcp frontends`,
			`config.toml:7: frontend "dns": max_queue: only applies to tcp frontends`,
			`config.toml:8: frontend "dns": queue_timeout: only applies to tcp frontends`,
			`config.toml:9: frontend "dns": half_close_timeout: only applies to tcp frontends`,
			`config.toml:10: frontend "dns": tcp_keepalive: only applies to tcp frontends`,
			`config.toml:11: frontend "dns": keepalive_idle: only applies to tcp frontends`,
			`config.toml:12: frontend "dns": keepalive_interval: only applies to tcp frontends`,
			`config.toml:13: frontend "dns": keepalive_count: only applies to tcp frontends`,
			`config.toml:14: frontend "dns": on_down: only applies to tcp frontends`,
			`config.toml:16: frontend "dns": max_connections: only applies to tcp frontends`,
			`config.toml:17: frontend "dns": connect_timeout: only applies to tcp frontends`,
			`config.toml:19: frontend "dns": health.check: "redis" probes over TCP; on a udp frontend set health.port to the backends' TCP port`,
		},
	},
	{
		name: "udp frontend with a tcp check and no side port",
		toml: `
[[frontend]]
name = "dns"
protocol = "udp"
listen = "127.0.0.1:5353"
  [frontend.health]
  check = "tcp"
  [[frontend.backend]]
  address = "127.0.0.1:53"
`,
		want: []string{
			`config.toml:7: frontend "dns": health.check: "tcp" probes over TCP; on a udp frontend set health.port to the backends' TCP port`,
		},
	},
	{
		name: "tcp frontend with udp-only options, responses below -1",
		toml: demoFrontend + `responses = -2
max_flows = 100
receive_buffer = "4MiB"
`,
		want: []string{
			`config.toml:6: frontend "demo": responses: must be at least -1, got -2`,
			`config.toml:6: frontend "demo": responses: only applies to udp frontends`,
			`config.toml:7: frontend "demo": max_flows: only applies to udp frontends`,
			`config.toml:8: frontend "demo": receive_buffer: only applies to udp frontends`,
		},
	},
	{
		name: "udp receive_buffer too small",
		toml: `
[[frontend]]
name = "dns"
protocol = "udp"
listen = "127.0.0.1:5353"
receive_buffer = "1KiB"
  [[frontend.backend]]
  address = "127.0.0.1:53"
`,
		want: []string{
			`config.toml:6: frontend "dns": receive_buffer: must be between 4KiB and 1GiB, got 1KiB`,
		},
	},
	{
		name: "many problems at once, in file order",
		toml: `
[global]
workers = -1
max_pipes = "lots"

[[frontend]]
name = "pg"
listen = "127.0.0.1:6432"
strategy = "fastest"
  [frontend.health]
  rise = 0
  [[frontend.backend]]
  address = "10.0.0.1:5432"
  weight = 0
  [[frontend.backend]]
  adress = "10.0.0.2:5432"
`,
		want: []string{
			`config.toml:3: global.workers: must be between 0 and 1024, got -1`,
			`config.toml:4: global.max_pipes: must be an integer, got a string`,
			`config.toml:9: frontend "pg": strategy: must be one of roundrobin, leastconn, p2c, maglev; got "fastest"`,
			`config.toml:11: frontend "pg": health.rise: must be between 1 and 100, got 0`,
			`config.toml:14: frontend "pg": backend[0].weight: must be between 1 and 256, got 0`,
			`config.toml:15: frontend "pg": backend[1].address: required: the backend's IP:port, such as "10.0.0.11:5432"`,
			`config.toml:16: frontend[0].backend[1]: unknown key "adress" (did you mean "address"?)`,
		},
	},
}

// demoFrontend is a valid frontend for cases about other settings; keys
// appended to it land in its table from line 6 on.
const demoFrontend = `
[[frontend]]
name = "demo"
listen = "127.0.0.1:7000"
backend = [{ address = "127.0.0.1:7001" }]
`

func TestParseBadConfigs(t *testing.T) {
	for _, tc := range badConfigs {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.toml), "config.toml")
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want problems:\n%s", cfg, strings.Join(tc.want, "\n"))
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) != len(tc.want) {
				t.Errorf("error %T with %d problems, want *Error with %d", err, len(cerr.Problems), len(tc.want))
			}
		})
	}
}

func TestParseProblemFields(t *testing.T) {
	_, err := Parse([]byte(badConfigs[0].toml), "config.toml")
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v is not an *Error", err)
	}
	want := Problem{File: "config.toml", Line: 11, Path: "frontend[0].backend[1]", Msg: `unknown key "wieght" (did you mean "weight"?)`}
	if len(cerr.Problems) != 1 || cerr.Problems[0] != want {
		t.Errorf("problems = %+v, want [%+v]", cerr.Problems, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.toml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load error %v does not wrap fs.ErrNotExist", err)
	}
	if want := "load config: open " + path + ": no such file or directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
