package history

import "testing"

// TestSecondsAndOrphanBackends: a Recorder keeps the samples it was made
// for, and a backend read before any frontend (readings out of the order
// Record asks for) is left out of History rather than filed under the
// wrong frontend.
func TestSecondsAndOrphanBackends(t *testing.T) {
	r := New(60, nil)
	if r.Seconds() != 60 {
		t.Fatalf("Seconds() = %d, want 60", r.Seconds())
	}
	orphan := Key{Frontend: "pg", Backend: "a"}
	for i := range 3 {
		r.Record(at(float64(i)), []Reading{{Key: orphan, Total: uint64(i)}, {Key: fe, Total: uint64(i)}})
	}
	h, found := r.History("pg", 600)
	if !found || len(h.Frontends) != 1 || len(h.Frontends[0].Backends) != 0 || h.Frontends[0].Series.Len() != 2 {
		t.Fatalf("History = %+v, %v; want pg's own series only", h, found)
	}
}
