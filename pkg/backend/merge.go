package backend

import "fmt"

// MergePlan is the outcome of Merge: the member list a frontend should
// have, and the changes that get there. Nothing changes until Apply.
type MergePlan struct {
	// Backends is the new member list, in the order of the specs: running
	// backends that keep their identity are the same *Backend (their
	// connections, counters, health and admin state carry over), the others
	// are new.
	Backends []*Backend
	// Specs is what Backends[i] is configured as: the specs given to
	// Merge, with empty names resolved to the address. Pass it as
	// configured to the next Merge.
	Specs []Spec
	// Added, Updated, Kept and Removed name the backends by what happens to
	// them: new; kept with a changed weight, cap or backup flag; kept as
	// they are; retired. A backend whose address changed under the same
	// name is both removed (the old server) and added (the new one).
	Added, Updated, Kept, Removed []string

	retired []*Backend
	added   []*Backend
	updates []func()
}

// Merge matches the running backends of a frontend with the specs it should
// have now, by name: a backend's identity is its frontend and its name, so
// the same name at the same address is the same backend. running[i] is the
// backend last configured as configured[i].
//
// A kept backend takes the spec's max_connections and backup flag. Its
// weight changes only when the spec's weight differs from the configured
// one: a weight set at runtime survives until the configuration changes
// that weight. Its administrative state (drain, maint) always survives.
//
// Merge is the one way a frontend's backends change while it serves:
// a config reload, and discovery of backends at runtime, both produce specs
// and merge them. It fails, with an error wrapping ErrInvalid and changing
// nothing, on an invalid spec or two specs with the same name.
func Merge(running []*Backend, configured []Spec, specs []Spec) (*MergePlan, error) {
	if len(running) != len(configured) {
		return nil, fmt.Errorf("merge: %d running backends, %d configured specs: %w", len(running), len(configured), ErrInvalid)
	}
	byName := make(map[string]int, len(running))
	for i, b := range running {
		byName[b.name] = i
	}
	p := &MergePlan{}
	seen := make(map[string]bool, len(specs))
	matched := make([]bool, len(running))
	for _, spec := range specs {
		if spec.Name == "" {
			spec.Name = spec.Address.String()
		}
		if seen[spec.Name] {
			return nil, fmt.Errorf("backend %q listed twice: %w", spec.Name, ErrInvalid)
		}
		seen[spec.Name] = true
		// New validates the spec, for kept backends too: Apply cannot fail.
		fresh, err := New(spec)
		if err != nil {
			return nil, err
		}
		i, ok := byName[spec.Name]
		if !ok || running[i].addr != spec.Address {
			p.added = append(p.added, fresh)
			p.Backends = append(p.Backends, fresh)
			p.Specs = append(p.Specs, spec)
			p.Added = append(p.Added, spec.Name)
			continue
		}
		matched[i] = true
		b, old := running[i], configured[i]
		p.Backends = append(p.Backends, b)
		p.Specs = append(p.Specs, spec)
		if spec == old {
			p.Kept = append(p.Kept, spec.Name)
			continue
		}
		p.Updated = append(p.Updated, spec.Name)
		p.updates = append(p.updates, func() {
			if spec.Weight != old.Weight {
				_ = b.SetWeight(spec.Weight) // validated by New above
			}
			_ = b.SetMaxConnections(spec.MaxConnections)
			b.SetBackup(spec.Backup)
		})
	}
	for i, b := range running {
		if !matched[i] {
			p.retired = append(p.retired, b)
			p.Removed = append(p.Removed, b.name)
		}
	}
	return p, nil
}

// Changed reports whether the plan changes anything at all.
func (p *MergePlan) Changed() bool {
	return len(p.Added)+len(p.Updated)+len(p.Removed) > 0
}

// Retired returns the running backends the plan drops. Their open
// connections run on to their end.
func (p *MergePlan) Retired() []*Backend { return p.retired }

// Apply makes the changes to kept backends and drains the retired ones,
// so that a snapshot taken before the change cannot hand them a new
// connection. The added backends start their slow start, as a recovered
// one does: a server that joins a serving frontend (a reload, a DNS
// answer) is as cold as one back from a failure. Call it once, as the new
// member list takes over (a Set built from Backends adopts them).
func (p *MergePlan) Apply() {
	for _, b := range p.added {
		b.upSince.Store(b.clock().UnixNano())
	}
	for _, u := range p.updates {
		u()
	}
	for _, b := range p.retired {
		_ = b.SetState(Drain)
	}
}
