package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
)

// Role is what a token may do (docs/rest-api.md): read everything, or also write.
type Role string

// Roles of the token file.
const (
	RoleRead  Role = "read"
	RoleWrite Role = "write"
)

// TokenFile holds the bearer tokens of --api-token-file: one token per line
// as "NAME TOKEN ROLE", blank lines and lines starting with # ignored. The
// NAME is what the audit log records as "who". It is safe for concurrent
// use; Reload (the daemon calls it on SIGHUP) swaps all tokens at once or
// keeps the old set if the file is broken.
type TokenFile struct {
	path   string
	mu     sync.RWMutex
	tokens []tokenEntry
}

type tokenEntry struct {
	name string
	hash [sha256.Size]byte
	role Role
}

// maxTokenFileBytes bounds what Reload reads: thousands of tokens fit.
const maxTokenFileBytes = 1 << 20

// tokenNamePattern keeps names printable in logs and audit records.
var tokenNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// LoadTokenFile reads and checks a token file. Errors name the line.
func LoadTokenFile(path string) (*TokenFile, error) {
	t := &TokenFile{path: path}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// ErrTokenFilePermissions is wrapped by the error for a token file that
// group or others may read, write or execute: the tokens are secrets like
// a private key and get the same rule (mode 0600 or stricter).
var ErrTokenFilePermissions = errors.New("token file readable by group or others")

// Reload re-reads the file; on error the previous tokens stay in effect.
// A file with group or world permissions is refused at start and on every
// reload, like a private key.
func (t *TokenFile) Reload() error {
	f, err := os.Open(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path: what is checked is what is read.
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("token file %s has mode %#o: %w (run chmod 600 %s)", t.path, perm, ErrTokenFilePermissions, t.path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if len(data) > maxTokenFileBytes {
		return fmt.Errorf("token file %s is larger than %d bytes", t.path, maxTokenFileBytes)
	}
	tokens, err := parseTokens(data)
	if err != nil {
		return fmt.Errorf("token file %s: %w", t.path, err)
	}
	t.mu.Lock()
	t.tokens = tokens
	t.mu.Unlock()
	return nil
}

// Len is the number of tokens loaded.
func (t *TokenFile) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.tokens)
}

func parseTokens(data []byte) ([]tokenEntry, error) {
	var out []tokenEntry
	names := map[string]int{}
	hashes := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, fmt.Errorf("line %d: want \"NAME TOKEN ROLE\", got %d fields", n, len(fields))
		}
		name, token, role := fields[0], fields[1], Role(fields[2])
		if !tokenNamePattern.MatchString(name) {
			return nil, fmt.Errorf("line %d: name %q must match %s", n, name, tokenNamePattern)
		}
		if role != RoleRead && role != RoleWrite {
			return nil, fmt.Errorf("line %d: role %q must be %q or %q", n, role, RoleRead, RoleWrite)
		}
		if prev, dup := names[name]; dup {
			return nil, fmt.Errorf("line %d: name %q already used on line %d", n, name, prev)
		}
		h := sha256.Sum256([]byte(token))
		if prev, dup := hashes[h]; dup {
			// Two names for one token would make the audit's "who" ambiguous.
			return nil, fmt.Errorf("line %d: same token as line %d", n, prev)
		}
		names[name], hashes[h] = n, n
		out = append(out, tokenEntry{name: name, hash: h, role: role})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// lookup finds the token's entry. Every stored token is compared, in
// constant time over equal-length SHA-256 digests, so neither the token's
// length nor its position in the file shows in the response time.
func (t *TokenFile) lookup(token string) (tokenEntry, bool) {
	h := sha256.Sum256([]byte(token))
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found tokenEntry
	ok := 0
	for _, e := range t.tokens {
		if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 {
			found, ok = e, 1
		}
	}
	return found, ok == 1
}

// anonymous is the audit "who" when the API runs without a token file.
const anonymous = "anonymous"

// authorize checks the request's bearer token against the role it needs
// and returns the token name for the audit log.
func (t *TokenFile) authorize(r *http.Request, need Role) (string, error) {
	if t == nil {
		return anonymous, nil
	}
	auth := r.Header.Get("Authorization")
	scheme, token, found := strings.Cut(auth, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", newError(http.StatusUnauthorized, CodeUnauthorized, "", "missing bearer token (Authorization: Bearer TOKEN)")
	}
	e, ok := t.lookup(strings.TrimSpace(token))
	if !ok {
		return "", newError(http.StatusUnauthorized, CodeUnauthorized, "", "unknown token")
	}
	if need == RoleWrite && e.role != RoleWrite {
		return "", newError(http.StatusForbidden, CodeForbidden, "", fmt.Sprintf("token %q has role %q; this request needs %q", e.name, e.role, RoleWrite))
	}
	return e.name, nil
}
