package config

// SettingLine returns the 1-based line of the setting at an indexed path,
// such as "admin.users_file" or "frontend[2].health.password", in the TOML
// text of a config, or the line of its nearest enclosing table when the
// setting itself cannot be placed; 0 when neither can. It lets a problem
// found after loading (a secret file that cannot be read) be reported as
// "file:line: setting: ..." like the config's own problems.
func SettingLine(text, path string) int {
	return indexLines(text).lineOf(path)
}
