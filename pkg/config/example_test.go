package config_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/splicerlb/splicer/pkg/config"
)

func ExampleNew() {
	cfg, err := config.New().Workers(2).
		Frontend("pg").Listen("127.0.0.1:0").Strategy(config.StrategyLeastConn).ConnectTimeout(time.Second).
		Backend("127.0.0.1:5432", 1).
		Backend("127.0.0.1:5433", 2).BackendOpts(config.BackendOptions{MaxConnections: 10, Backup: true}).
		HealthCheck(config.CheckPostgres).HealthUser("probe").
		Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	pg := cfg.Frontends[0]
	fmt.Println(pg.Name, pg.Listen, pg.Strategy, pg.ConnectTimeout, pg.Health.Check, pg.Health.Database)
	for _, b := range pg.Backends {
		fmt.Println(b.Name, b.Weight, b.MaxConnections, b.Backup)
	}
	// Output:
	// pg [127.0.0.1:0] leastconn 1s postgres probe
	// 127.0.0.1:5432 1 0 false
	// 127.0.0.1:5433 2 10 true
}

func ExampleParse() {
	_, err := config.Parse([]byte(`
[[frontend]]
name = "pg"
listen = "127.0.0.1:6432"

  [[frontend.backend]]
  address = "10.0.0.11:5432"
  wieght = 2

  [[frontend.backend]]
  address = "10.0.0.12:5432"
  weight = 0
`), "config.toml")
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// config.toml:8: frontend[0].backend[0]: unknown key "wieght" (did you mean "weight"?)
	// config.toml:12: frontend "pg": backend[1].weight: must be between 1 and 256, got 0
}
