package config

// StateFile sets [global] state_file; "" keeps no state file.
func (b *Builder) StateFile(path string) *Builder {
	b.global().StateFile = &stringSetting{v: path}
	return b
}

// RuntimeDir sets [global] runtime_dir.
func (b *Builder) RuntimeDir(path string) *Builder {
	b.global().RuntimeDir = &stringSetting{v: path}
	return b
}
