package admin

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// The users file (admin.users_file) has one user per line:
//
//	# name  role               token digest
//	alice   admin              sha256:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b
//	bob     operator:pg,redis  sha256:...
//	grafana viewer             sha256:...
//	ci-box  operator           -
//
// Fields are separated by spaces or tabs; blank lines and lines starting
// with # are ignored. The digest is the SHA-256 of the user's bearer token;
// "-" means the user has no token and authenticates only by a TLS client
// certificate whose subject common name is the user's name. No token is
// ever stored: `splicer user add` prints it once.

// TokenPrefix starts every token splicer issues, so that secret scanners
// and people can recognise one.
const TokenPrefix = "splicer_"

// tokenBytes is the randomness of a token: 256 bits.
const tokenBytes = 32

// maxUserName bounds a user name, as the frontend names are bounded.
const maxUserName = 64

// Digest is the SHA-256 of a token.
type Digest [sha256.Size]byte

// User is one line of the users file.
type User struct {
	Name string
	Role Role
	// Digest is the token's SHA-256; meaningful only when HasToken.
	Digest   Digest
	HasToken bool
	// Line is where the user is in the file, for messages.
	Line int
}

// Users is a parsed users file. It is never modified: a reload builds a
// new one.
type Users struct {
	list []User
}

// List returns the users in file order. The slice is shared: do not
// modify it.
func (u *Users) List() []User { return u.list }

// Lookup finds a user by name.
func (u *Users) Lookup(name string) (User, bool) {
	for _, x := range u.list {
		if x.Name == name {
			return x, true
		}
	}
	return User{}, false
}

// ByToken returns the user whose digest matches token's. Every digest is
// compared, each in constant time, so the time taken says nothing about
// which user, if any, matched or how close a guess came.
func (u *Users) ByToken(token string) (User, bool) {
	d := TokenDigest(token)
	found := -1
	for i := range u.list {
		if subtle.ConstantTimeCompare(d[:], u.list[i].Digest[:]) == 1 && u.list[i].HasToken {
			found = i
		}
	}
	if found < 0 {
		return User{}, false
	}
	return u.list[found], true
}

// TokenDigest returns the SHA-256 of a token, as the users file stores it.
// A token of 256 random bits needs no salt or slow hash: nobody can search
// its space, unlike a password's.
func TokenDigest(token string) Digest { return sha256.Sum256([]byte(token)) }

// NewToken returns a fresh token of 256 random bits and its digest.
func NewToken() (string, Digest) {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails: it crashes the program instead
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, TokenDigest(token)
}

// UsersError is what ParseUsers returns: every problem of the file, each
// with its line.
type UsersError struct {
	File     string
	Problems []string // "LINE: message"
}

// Error lists the problems, one per line, as FILE:LINE: message.
func (e *UsersError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.File + ":" + p
	}
	return strings.Join(lines, "\n")
}

// ParseUsers reads a users file; file names it in errors. Every problem is
// reported, with its line: an unknown role, a malformed digest, a name used
// twice. A digest is never repeated in an error (it is not a secret, but
// it is no one's business either).
func ParseUsers(data []byte, file string) (*Users, error) {
	u := &Users{}
	var problems []string
	seen := map[string]int{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		text := strings.TrimSpace(string(line))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, err := parseUserLine(text)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%d: %v", n, err))
			continue
		}
		if first, dup := seen[user.Name]; dup {
			problems = append(problems, fmt.Sprintf("%d: user %q is already on line %d", n, user.Name, first))
			continue
		}
		seen[user.Name] = n
		user.Line = n
		u.list = append(u.list, user)
	}
	if problems != nil {
		return nil, &UsersError{File: file, Problems: problems}
	}
	return u, nil
}

func parseUserLine(text string) (User, error) {
	fields := strings.Fields(text)
	if len(fields) != 3 {
		return User{}, fmt.Errorf("want 3 fields (name, role, token digest), got %d", len(fields))
	}
	name, roleText, digest := fields[0], fields[1], fields[2]
	if err := checkUserName(name); err != nil {
		return User{}, err
	}
	role, err := ParseRole(roleText)
	if err != nil {
		return User{}, fmt.Errorf("user %q: %v", name, err)
	}
	user := User{Name: name, Role: role}
	if digest == "-" {
		return user, nil
	}
	hexDigest, ok := strings.CutPrefix(digest, "sha256:")
	b, err := hex.DecodeString(hexDigest)
	if !ok || err != nil || len(b) != sha256.Size {
		return User{}, fmt.Errorf(`user %q: the token digest must be "sha256:" and 64 hex digits, or "-" for no token`, name)
	}
	copy(user.Digest[:], b)
	user.HasToken = true
	return user, nil
}

// checkUserName allows what identifies a person or a system without
// quoting: letters, digits and _ . @ -, not starting with - or #.
func checkUserName(name string) error {
	if name == "" || len(name) > maxUserName {
		return fmt.Errorf("user name must be 1 to %d characters, got %d", maxUserName, len(name))
	}
	if name[0] == '-' {
		return fmt.Errorf("user name %q must not start with -", name)
	}
	for _, c := range []byte(name) {
		ok := c == '_' || c == '.' || c == '@' || c == '-' ||
			'0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !ok {
			return fmt.Errorf("user name %q: only A-Z a-z 0-9 _ . @ - are allowed", name)
		}
	}
	return nil
}

// formatUser writes a user as one line of the users file.
func formatUser(u User) string {
	digest := "-"
	if u.HasToken {
		digest = "sha256:" + hex.EncodeToString(u.Digest[:])
	}
	return u.Name + " " + u.Role.String() + " " + digest
}

// errNoUser is returned when the user to change is not in the file.
var errNoUser = errors.New("no such user")
