package main

import (
	"testing"

	"github.com/splicerlb/splicer/pkg/config"
)

func TestProxyNote(t *testing.T) {
	cases := []struct {
		name  string
		build func(f *config.FrontendBuilder)
		want  string
	}{
		{"none", func(f *config.FrontendBuilder) {}, ""},
		{"all v2", func(f *config.FrontendBuilder) { f.SendProxy(config.ProxyV2) }, "sent as v2"},
		{"accept, optional", func(f *config.FrontendBuilder) {
			f.AcceptProxy("10.0.0.0/8", "::1").AcceptProxyOptional(true)
		}, "read from 10.0.0.0/8 ::1/128 (others served as they are)"},
		{"mixed", func(f *config.FrontendBuilder) {
			f.AcceptProxy("10.0.0.0/8").SendProxy(config.ProxyV1).
				Backend("127.0.0.1:7003", 1).BackendOpts(config.BackendOptions{SendProxy: config.ProxyNone})
		}, "read from 10.0.0.0/8 (others refused); sent as v1 to 2 of 3 backends"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fb := config.New().Frontend("fe").Listen("127.0.0.1:0").Backend("127.0.0.1:7001", 1).Backend("127.0.0.1:7002", 1)
			tc.build(fb)
			cfg, err := fb.Build()
			if err != nil {
				t.Fatal(err)
			}
			if got := proxyNote(&cfg.Frontends[0]); got != tc.want {
				t.Errorf("proxyNote = %q, want %q", got, tc.want)
			}
		})
	}
}
