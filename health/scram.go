package health

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/splicerlb/splicer/pkg/resp"
)

// scramMaxIterations bounds the PBKDF2 work a server may ask of a probe:
// PostgreSQL's default is 4096, and a hostile server asking for billions
// must not pin a CPU for the length of every probe.
const scramMaxIterations = 100_000

// scram is the client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as
// PostgreSQL speaks it: no channel binding (the probe has no TLS), and an
// empty user name, since the server takes the user from the startup
// message. The password is used as it is: the probe applies no SASLprep,
// which changes only passwords with non-ASCII characters.
type scram struct {
	password        []byte
	clientNonce     string
	clientFirstBare string
	// final is the client-final-message once the server's first message
	// has been answered; authMessage and saltedPassword go with it.
	final          []byte
	authMessage    []byte
	saltedPassword []byte
	// verified is set once the server has proved it knows the password.
	verified bool
}

// scramGS2Header says: no channel binding, no authorization identity.
const scramGS2Header = "n,,"

// newScram starts an exchange and returns the client-first-message.
func newScram(password string) (*scram, []byte) {
	nonce := make([]byte, 18)
	rand.Read(nonce) // never fails: crypto/rand crashes the program rather than return an error
	return startScram(password, "", base64.StdEncoding.EncodeToString(nonce))
}

// startScram starts an exchange as user (PostgreSQL: "") with a client
// nonce; the tests use it with RFC 7677's example.
func startScram(password, user, nonce string) (*scram, []byte) {
	s := &scram{password: []byte(password), clientNonce: nonce}
	s.clientFirstBare = "n=" + user + ",r=" + nonce
	return s, []byte(scramGS2Header + s.clientFirstBare)
}

// answer checks the server-first-message (r=nonce,s=salt,i=iterations)
// and returns the client-final-message with the proof.
func (s *scram) answer(serverFirst []byte) ([]byte, error) {
	attrs, err := scramAttrs(serverFirst, "rsi")
	if err != nil {
		return nil, err
	}
	nonce := attrs['r']
	if !strings.HasPrefix(nonce, s.clientNonce) || len(nonce) == len(s.clientNonce) {
		return nil, errors.New("malformed reply: SCRAM server nonce does not extend the probe's")
	}
	salt, err := base64.StdEncoding.DecodeString(attrs['s'])
	if err != nil || len(salt) == 0 {
		return nil, errors.New("malformed reply: SCRAM salt is not base64")
	}
	iter, err := strconv.Atoi(attrs['i'])
	switch {
	case err != nil || iter < 1:
		return nil, fmt.Errorf("malformed reply: SCRAM iteration count %q", attrs['i'])
	case iter > scramMaxIterations:
		return nil, fmt.Errorf("server asks for %d SCRAM iterations, above the probe's limit of %d", iter, scramMaxIterations)
	}
	s.saltedPassword, err = pbkdf2.Key(sha256.New, string(s.password), salt, iter, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(scramGS2Header)) + ",r=" + nonce
	s.authMessage = []byte(s.clientFirstBare + "," + string(serverFirst) + "," + withoutProof)
	clientKey := scramHMAC(s.saltedPassword, []byte("Client Key"))
	storedKey := sha256.Sum256(clientKey)
	proof := scramHMAC(storedKey[:], s.authMessage)
	subtle.XORBytes(proof, proof, clientKey)
	s.final = []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof))
	return s.final, nil
}

// verify checks the server-final-message: the server's signature proves it
// holds the password's verifier; "e=" is the server's refusal.
func (s *scram) verify(serverFinal []byte) error {
	if e, ok := bytes.CutPrefix(serverFinal, []byte("e=")); ok {
		return fmt.Errorf("server refused SCRAM authentication: %s", resp.Quote(e))
	}
	attrs, err := scramAttrs(serverFinal, "v")
	if err != nil {
		return err
	}
	got, err := base64.StdEncoding.DecodeString(attrs['v'])
	if err != nil {
		return errors.New("malformed reply: SCRAM server signature is not base64")
	}
	serverKey := scramHMAC(s.saltedPassword, []byte("Server Key"))
	if !hmac.Equal(got, scramHMAC(serverKey, s.authMessage)) {
		return errors.New("SCRAM server signature does not match: the server does not know the password")
	}
	s.verified = true
	return nil
}

func scramHMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// scramAttrs parses "k=v,k=v" and requires the keys of want, in order, at
// its start. A mandatory extension ("m=") is refused, as RFC 5802 asks.
func scramAttrs(msg []byte, want string) (map[byte]string, error) {
	attrs := make(map[byte]string)
	for i, part := range strings.Split(string(msg), ",") {
		if len(part) < 2 || part[1] != '=' {
			return nil, fmt.Errorf("malformed reply: SCRAM message %s", resp.Quote(msg))
		}
		if part[0] == 'm' {
			return nil, errors.New("server requires a SCRAM extension the probe does not know")
		}
		if i < len(want) && part[0] != want[i] {
			return nil, fmt.Errorf("malformed reply: SCRAM message %s lacks %q", resp.Quote(msg), want[i])
		}
		attrs[part[0]] = part[2:]
	}
	if len(attrs) < len(want) {
		return nil, fmt.Errorf("malformed reply: SCRAM message %s lacks %q", resp.Quote(msg), want[len(attrs):])
	}
	return attrs, nil
}
