package l4

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/balance"
	"github.com/splicerlb/splicer/pkg/config"
)

// A config built by hand rather than loaded (l4 used as a library) is
// still checked where it matters: a backend or strategy the data plane
// cannot build is refused, by NewServer and by Prepare alike, with an
// error naming the frontend and the value, and a refused reload leaves the
// server as it was.
func TestUncheckedConfigRefused(t *testing.T) {
	b := startBackend(t, echo)
	cases := []struct {
		name   string
		mutate func(*config.Frontend)
		is     error
		says   string
		// reload is what Prepare says of a frontend that exists, when
		// not says.
		reload string
	}{
		{"weight", func(fc *config.Frontend) { fc.Backends[0].Weight = 0 }, backend.ErrInvalid,
			`frontend "fe": backend ` + b.addr.String() + `: backend "` + b.addr.String() + `": weight 0 outside`,
			`frontend "fe": backend "` + b.addr.String() + `": weight 0 outside`},
		{"strategy", func(fc *config.Frontend) { fc.Strategy = "fastest" }, balance.ErrUnknownStrategy,
			`frontend "fe": strategy "fastest" (want `, ""},
		{"slow start", func(fc *config.Frontend) { fc.SlowStart = -time.Second }, backend.ErrInvalid,
			`frontend "fe": negative slow start -1s`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, []netip.AddrPort{b.addr}, nil)
			tc.mutate(&cfg.Frontends[0])
			if _, err := NewServer(cfg, testLogger(t)); !errors.Is(err, tc.is) || !strings.HasPrefix(err.Error(), tc.says) {
				t.Errorf("NewServer: %v\nwant %s…", err, tc.says)
			}
			// The same value in a reload: of the frontend that exists,
			// and of one the reload adds.
			s := startServer(t, testConfig(t, []netip.AddrPort{b.addr}, nil))
			next := testConfig(t, []netip.AddrPort{b.addr}, nil)
			tc.mutate(&next.Frontends[0])
			says := tc.says
			if tc.reload != "" {
				says = tc.reload
			}
			if p, err := s.Prepare(next); !errors.Is(err, tc.is) || !strings.HasPrefix(err.Error(), says) {
				if p != nil {
					p.Abort()
				}
				t.Errorf("Prepare, changed frontend: %v\nwant %s…", err, says)
			}
			added := buildConfig(t, config.New().Workers(2).ConnectionsBuffer(testLogBuffer).Frontend("fe").Listen("127.0.0.1:0").
				Backend(b.addr.String(), 1).Frontend("other").Listen("127.0.0.1:0"), []netip.AddrPort{b.addr}, nil)
			tc.mutate(&added.Frontends[1])
			says = strings.Replace(tc.says, `frontend "fe"`, `frontend "other"`, 1)
			if p, err := s.Prepare(added); !errors.Is(err, tc.is) || !strings.HasPrefix(err.Error(), says) {
				if p != nil {
					p.Abort()
				}
				t.Errorf("Prepare, added frontend: %v\nwant %s…", err, says)
			}
			// Nothing changed, and the reload lock was let go.
			if s.Addrs("other") != nil {
				t.Error("a refused reload added a frontend")
			}
			c := dialFE(t, s)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := exchange(c, []byte("still")); err != nil {
				t.Fatal(err)
			}
			reload(t, s, testConfig(t, []netip.AddrPort{b.addr}, nil))
		})
	}
}
