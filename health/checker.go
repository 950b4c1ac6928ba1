package health

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"

	"github.com/splicerlb/splicer/pkg/config"
)

// ErrConfig is wrapped by every error NewChecker and New return about their
// input, so callers can tell a bad health section with errors.Is.
var ErrConfig = errors.New("invalid health check")

// NewChecker builds the TCP-side Checker for h.Check: tcp, send_expect,
// postgres, mysql, redis or http. When h.Port is set the checker probes that
// port on the backend's address instead of the service port. It reads the
// database password (h.Password) now and fails when it cannot; the
// checker is a SecretReloader, which reads it again on demand. h.Check
// "none" has no checker: the caller runs no scheduler, and the error says
// so. opts adjust it: WithProxyHeaders for backends that read a PROXY
// header first.
func NewChecker(h config.Health, opts ...Option) (Checker, error) {
	c, err := newChecker(h, "tcp")
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// NewUDPChecker builds the Checker of a UDP frontend: send_expect sends its
// request as one datagram on a connected UDP socket and matches the first
// reply datagram (an ICMP port unreachable fails the probe with "connection
// refused"); every other kind probes over TCP as NewChecker's does, which is
// why the config requires a side port for them on UDP frontends.
func NewUDPChecker(h config.Health) (Checker, error) {
	return newChecker(h, "udp")
}

func newChecker(h config.Health, network string) (*checker, error) {
	if h.Port < 0 || h.Port > 65535 {
		return nil, fmt.Errorf("health.port %d outside 0..65535: %w", h.Port, ErrConfig)
	}
	c := &checker{kind: h.Check, port: uint16(h.Port)}
	switch h.Check {
	case config.CheckTCP:
		c.probe = probeTCP
	case config.CheckSendExpect:
		p, err := newSendExpect(h, network)
		if err != nil {
			return nil, err
		}
		c.probe = p.probe
	case config.CheckPostgres, config.CheckMySQL, config.CheckRedis:
		p, pw, err := newDatabaseProbe(h)
		if err != nil {
			return nil, err
		}
		c.probe, c.secrets = p, pw
	case config.CheckHTTP:
		p, err := newHTTPProbe(h.Path, h.Status, h.HTTPKeepalive)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", err, ErrConfig)
		}
		c.probe = p.probe
	default:
		return nil, fmt.Errorf("health.check %q has no probe: %w", h.Check, ErrConfig)
	}
	return c, nil
}

func newSendExpect(h config.Health, network string) (*sendExpect, error) {
	p := &sendExpect{network: network, send: []byte(h.Send), expect: []byte(h.Expect)}
	if h.SendHex != "" {
		b, err := hex.DecodeString(h.SendHex)
		if err != nil {
			return nil, fmt.Errorf("health.send_hex: %w: %w", err, ErrConfig)
		}
		p.send = b
	}
	if h.ExpectRegex != "" {
		re, err := regexp.Compile(h.ExpectRegex)
		if err != nil {
			return nil, fmt.Errorf("health.expect_regex: %w: %w", err, ErrConfig)
		}
		p.re, p.expect = re, nil
	}
	switch {
	case len(p.send) == 0:
		return nil, fmt.Errorf("send_expect needs health.send or health.send_hex: %w", ErrConfig)
	case p.re == nil && len(p.expect) == 0:
		return nil, fmt.Errorf("send_expect needs health.expect or health.expect_regex: %w", ErrConfig)
	}
	return p, nil
}

// SecretReloader is implemented by the Checkers that hold a secret, such
// as the redis probe's password: ReloadSecrets reads it again from its
// source, and the next probe uses it. On error the secret in use stays.
// It is safe to call while probes run.
type SecretReloader interface {
	ReloadSecrets() error
}

// ReloadSecrets implements SecretReloader; a checker without a secret has
// nothing to read.
func (c *checker) ReloadSecrets() error {
	if c.secrets == nil {
		return nil
	}
	return c.secrets.ReloadSecrets()
}
