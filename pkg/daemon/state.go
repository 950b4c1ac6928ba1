package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/stats"
)

// The state file keeps what an operator changed at runtime (a backend's
// drain or maint state, its weight) across restarts and upgrades, as
// HAProxy's server-state-file does. It holds the same document as GET
// /api/v1/state, and is rewritten after every such change: write to a
// temporary file, fsync, rename over the old one, fsync the directory, so
// a crash leaves the old file or the new one, never half of one.

// stateFile writes and reads global.state_file.
type stateFile struct {
	log zerolog.Logger
	mu  sync.Mutex
	// path is the file; "" keeps none. frozen is set once an upgrade
	// handed over: the new process owns the file from then on.
	path   string
	frozen bool
}

// setPath changes the file written from now on (a reload may move it).
func (sf *stateFile) setPath(path string) {
	sf.mu.Lock()
	sf.path = path
	sf.mu.Unlock()
}

// freeze stops all writes: another process owns the file now.
func (sf *stateFile) freeze() {
	sf.mu.Lock()
	sf.frozen = true
	sf.mu.Unlock()
}

// runtimeState reads the runtime state of every backend of cfg in srv.
func runtimeState(cfg *config.Config, srv *l4.Server) stats.RuntimeState {
	st := stats.RuntimeState{Version: stats.RuntimeStateVersion, Written: time.Now().UTC(),
		Frontends: []stats.FrontendRuntimeState{}}
	for i := range cfg.Frontends {
		fc := &cfg.Frontends[i]
		configured := make(map[string]int, len(fc.Backends))
		for _, b := range fc.Backends {
			configured[b.Name] = b.Weight
		}
		fs := stats.FrontendRuntimeState{Name: fc.Name, Backends: []stats.BackendRuntimeState{}}
		for _, b := range srv.Backends(fc.Name) {
			fs.Backends = append(fs.Backends, stats.BackendRuntimeState{
				Name: b.Name(), Address: b.Address().String(), State: b.State().String(),
				Weight: b.Weight(), ConfiguredWeight: configured[b.Name()],
			})
		}
		st.Frontends = append(st.Frontends, fs)
	}
	return st
}

// save writes st, atomically. Failures are logged: the change they record
// is made and serves, it only would not survive a restart.
func (sf *stateFile) save(st stats.RuntimeState) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if sf.path == "" || sf.frozen {
		return
	}
	if err := writeAtomic(sf.path, st); err != nil {
		sf.log.Error().Err(err).Str("state_file", sf.path).
			Msg("cannot write the state file: runtime backend changes will not survive a restart")
	}
}

// writeAtomic writes v as JSON to path through a temporary file in the
// same directory: write, fsync, rename, fsync the directory.
func writeAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadState applies the state file to srv's backends, the config being
// cfg: a backend's state comes back if it still has the same name and
// address; its runtime weight if, besides, the config still gives the
// weight it gave when the state was saved. A missing file is a first
// start; an unreadable, corrupt or foreign one is reported and ignored.
func loadState(path string, cfg *config.Config, srv *l4.Server, log zerolog.Logger) {
	if path == "" {
		return
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info().Str("state_file", path).Msg("no state file yet: starting with the configured backend states")
		return
	}
	st, err := parseState(data, err)
	if err != nil {
		log.Warn().Err(err).Str("state_file", path).Msg("state file ignored: starting with the configured backend states")
		return
	}
	var applied, stale int
	for _, fs := range st.Frontends {
		backends := srv.Backends(fs.Name)
		fc := frontendConfig(cfg, fs.Name)
		for _, bs := range fs.Backends {
			b := findBackend(backends, bs.Name)
			if fc == nil || b == nil || b.Address().String() != bs.Address {
				stale++
				continue
			}
			if changed, err := applyBackendState(b, bs, configuredWeight(fc, bs.Name)); err != nil {
				log.Warn().Err(err).Str("frontend", fs.Name).Str("backend", bs.Name).Msg("state file entry ignored")
				stale++
			} else if changed {
				applied++
			}
		}
	}
	log.Info().Str("state_file", path).Time("written_at", st.Written).Int("applied", applied).
		Int("ignored", stale).Msg("runtime backend state restored")
}

// parseState decodes a state file read with readErr.
func parseState(data []byte, readErr error) (stats.RuntimeState, error) {
	var st stats.RuntimeState
	if readErr != nil {
		return st, readErr
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("corrupt: %w", err)
	}
	if st.Version != stats.RuntimeStateVersion {
		return st, fmt.Errorf("version %d, this splicer reads version %d", st.Version, stats.RuntimeStateVersion)
	}
	return st, nil
}

// applyBackendState restores bs on b, whose configured weight is now
// configured; it reports whether anything differs from the config. An
// entry that cannot be applied whole changes nothing.
func applyBackendState(b *backend.Backend, bs stats.BackendRuntimeState, configured int) (bool, error) {
	state, err := backend.ParseState(bs.State)
	if err != nil {
		return false, err
	}
	changed := false
	if bs.ConfiguredWeight == configured && bs.Weight != configured {
		if err := b.SetWeight(bs.Weight); err != nil {
			return false, err
		}
		changed = true
	}
	if state != backend.Ready {
		_ = b.SetState(state) // it takes every state ParseState returns
		changed = true
	}
	return changed, nil
}

func frontendConfig(cfg *config.Config, name string) *config.Frontend {
	for i := range cfg.Frontends {
		if cfg.Frontends[i].Name == name {
			return &cfg.Frontends[i]
		}
	}
	return nil
}

func configuredWeight(fc *config.Frontend, name string) int {
	for _, b := range fc.Backends {
		if b.Name == name {
			return b.Weight
		}
	}
	return 0
}

func findBackend(bs []*backend.Backend, name string) *backend.Backend {
	for _, b := range bs {
		if b.Name() == name {
			return b
		}
	}
	return nil
}
