package discovery

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// systemResolvers takes the address of every nameserver line, on port 53,
// in order, and nothing else: comments, options, search lines, a
// nameserver line without an address or with a host name.
func TestSystemResolvers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := `# written by a DHCP client
search example.net
nameserver 192.0.2.53
options ndots:2 timeout:1
nameserver
nameserver dns.example.net
  nameserver   2001:db8::53   # indented, with a comment
;nameserver 192.0.2.99
nameserver 127.0.0.53
`
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := systemResolvers(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.53:53"),
		netip.MustParseAddrPort("[2001:db8::53]:53"),
		netip.MustParseAddrPort("127.0.0.53:53"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("resolvers %v, want %v", got, want)
	}
	if _, err := systemResolvers(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing resolv.conf: %v, want ErrNotExist", err)
	}
}
