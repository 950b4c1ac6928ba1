package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/splicerlb/splicer/pkg/stats"
)

// Weight bounds accepted at runtime, the same as in the config file.
const (
	MinWeight = 1
	MaxWeight = 256
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

// serveSetState takes the state from ?state= or from a JSON body, so that
// both curl one-liners and the HTML page's fetch calls work.
func (s *Server) serveSetState(w http.ResponseWriter, r *http.Request) {
	fe, be := r.PathValue("frontend"), r.PathValue("backend")
	state := r.URL.Query().Get("state")
	if state == "" {
		var req stateRequest
		if err := decodeBody(w, r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		state = req.State
	}
	if state == "" {
		writeError(w, http.StatusBadRequest, `missing field "state"`)
		return
	}
	if !slices.Contains(stats.States(), state) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(
			`field "state": %q is not one of %s`, state, strings.Join(stats.States(), ", ")))
		return
	}
	if err := s.src.SetState(fe, be, state); err != nil {
		writeError(w, sourceStatus(err), err.Error())
		return
	}
	s.log.Info().Str("frontend", fe).Str("backend", be).Str("state", state).
		Str("remote", r.RemoteAddr).Msg("backend state set")
	writeJSON(w, http.StatusOK, backendChange{Frontend: fe, Backend: be, State: state})
}

func (s *Server) serveSetWeight(w http.ResponseWriter, r *http.Request) {
	fe, be := r.PathValue("frontend"), r.PathValue("backend")
	var req weightRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Weight == nil {
		writeError(w, http.StatusBadRequest, `missing field "weight"`)
		return
	}
	weight := *req.Weight
	if weight < MinWeight || weight > MaxWeight {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(
			`field "weight": %d is out of range %d..%d`, weight, MinWeight, MaxWeight))
		return
	}
	if err := s.src.SetWeight(fe, be, weight); err != nil {
		writeError(w, sourceStatus(err), err.Error())
		return
	}
	s.log.Info().Str("frontend", fe).Str("backend", be).Int("weight", weight).
		Str("remote", r.RemoteAddr).Msg("backend weight set")
	writeJSON(w, http.StatusOK, backendChange{Frontend: fe, Backend: be, Weight: weight})
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
