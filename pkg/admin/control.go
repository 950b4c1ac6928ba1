package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/stats"
)

// Weight bounds accepted at runtime: the config file's.
const (
	MinWeight = 1
	MaxWeight = config.MaxWeight
)

// maxBodyBytes bounds a control request body; the largest legal one is a
// few dozen bytes.
const maxBodyBytes = 4 << 10

// stateRequest is the body of POST .../state.
type stateRequest struct {
	State string `json:"state"`
}

// weightRequest is the body of PUT .../weight; a pointer tells a missing
// weight from an explicit 0.
type weightRequest struct {
	Weight *int `json:"weight"`
}

// backendChange is the answer to a successful state or weight change.
type backendChange struct {
	Frontend string `json:"frontend"`
	Backend  string `json:"backend"`
	State    string `json:"state,omitempty"`
	Weight   int    `json:"weight,omitempty"`
}

// serveSetState takes the state from a JSON body only: a change carried in
// the URL could be made by any link or image on any page.
func (s *Server) serveSetState(w http.ResponseWriter, r *http.Request, c *call) {
	fe, be := r.PathValue("frontend"), r.PathValue("backend")
	c.rec.Target = fe + "/" + be
	var req stateRequest
	if err := decodeBody(w, r, &req); err != nil {
		c.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	c.rec.New = req.State
	if err := validState(req.State); err != nil {
		c.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	prev, err := s.backend(fe, be)
	if err != nil {
		c.fail(w, sourceStatus(err), err.Error())
		return
	}
	c.rec.Previous = prev.State
	if !c.commit(w) {
		return
	}
	if err := s.src.SetState(fe, be, req.State); err != nil {
		c.failAfterCommit(w, sourceStatus(err), err)
		return
	}
	s.log.Info().Str("frontend", fe).Str("backend", be).Str("state", req.State).Str("previous", prev.State).
		Str("user", c.p.User).Str("source", c.p.Source).Msg("backend state set")
	writeJSON(w, http.StatusOK, backendChange{Frontend: fe, Backend: be, State: req.State})
}

func validState(state string) error {
	switch {
	case state == "":
		return errors.New(`missing field "state"`)
	case !slices.Contains(stats.States(), state):
		return fmt.Errorf(`field "state": %q is not one of %s`, state, strings.Join(stats.States(), ", "))
	}
	return nil
}

func (s *Server) serveSetWeight(w http.ResponseWriter, r *http.Request, c *call) {
	fe, be := r.PathValue("frontend"), r.PathValue("backend")
	c.rec.Target = fe + "/" + be
	var req weightRequest
	if err := decodeBody(w, r, &req); err != nil {
		c.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Weight == nil {
		c.fail(w, http.StatusBadRequest, `missing field "weight"`)
		return
	}
	weight := *req.Weight
	c.rec.New = strconv.Itoa(weight)
	if weight < MinWeight || weight > MaxWeight {
		c.fail(w, http.StatusBadRequest, fmt.Sprintf(
			`field "weight": %d is out of range %d..%d`, weight, MinWeight, MaxWeight))
		return
	}
	prev, err := s.backend(fe, be)
	if err != nil {
		c.fail(w, sourceStatus(err), err.Error())
		return
	}
	c.rec.Previous = strconv.Itoa(prev.Weight)
	if !c.commit(w) {
		return
	}
	if err := s.src.SetWeight(fe, be, weight); err != nil {
		c.failAfterCommit(w, sourceStatus(err), err)
		return
	}
	s.log.Info().Str("frontend", fe).Str("backend", be).Int("weight", weight).Int("previous", prev.Weight).
		Str("user", c.p.User).Str("source", c.p.Source).Msg("backend weight set")
	writeJSON(w, http.StatusOK, backendChange{Frontend: fe, Backend: be, Weight: weight})
}

// backend finds a backend in the current stats, for the value a change
// replaces; the errors are the Source's.
func (s *Server) backend(fe, be string) (stats.BackendStats, error) {
	for _, f := range s.src.Stats().Frontends {
		if f.Name != fe {
			continue
		}
		for _, b := range f.Backends {
			if b.Name == be {
				return b, nil
			}
		}
		return stats.BackendStats{}, fmt.Errorf("frontend %q has no backend %q: %w", fe, be, ErrNotFound)
	}
	return stats.BackendStats{}, fmt.Errorf("no frontend %q: %w", fe, ErrNotFound)
}

// decodeBody reads one JSON object into v, refusing unknown fields and
// trailing data, and names the field at fault when a value has the wrong
// type. An empty body leaves v untouched.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Errorf("field %q: want a %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	if err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	if dec.More() {
		return errors.New("request body: more than one JSON value")
	}
	return nil
}
