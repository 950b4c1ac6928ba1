package config

import (
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// unknownKeys reports every key of the file that the schema lacks, on each
// line it occurs, with the closest known key when one is near.
//
// It walks md.Keys against the raw types' toml tags rather than using
// md.Undecoded, because the decoder also fills a field from a key that
// matches it only case-insensitively ("Weight"), which must be an error too.
func unknownKeys(md toml.MetaData, ps *problems) {
	reported := make(map[string]bool)
	for _, key := range md.Keys() {
		_, at, known := schemaLookup(key)
		if at < 0 {
			continue
		}
		unknown := toml.Key(key[:at+1]).String()
		if reported[unknown] {
			continue
		}
		reported[unknown] = true
		msg := fmt.Sprintf("unknown key %q", key[at])
		if hint := closest(key[at], known); hint != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", hint)
		}
		places := ps.lines.places(unknown)
		if len(places) == 0 {
			ps.addAt(0, toml.Key(key[:at]).String(), msg)
		}
		for _, p := range places {
			ps.addAt(p.line, p.parent, msg)
		}
	}
}

// closest returns the known key an unknown one was most likely meant to be:
// one differing only in case, else the nearest within a small edit distance
// (1 for keys up to 5 bytes, else 2), else "".
func closest(key string, known []string) string {
	best, bestDist := "", min(2, max(1, len(key)/3))+1
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return k
		}
		if max(len(k)-len(key), len(key)-len(k)) >= bestDist {
			continue // the distance is at least the difference in length
		}
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
