package config

import "io/fs"

// AdminHosts sets [admin] hosts.
func (b *Builder) AdminHosts(names ...string) *Builder {
	b.admin().Hosts = &listSetting{v: names}
	return b
}

// AdminUsersFile sets [admin] users_file.
func (b *Builder) AdminUsersFile(path string) *Builder {
	b.admin().UsersFile = &stringSetting{v: path}
	return b
}

// AdminSocket sets [admin] socket.
func (b *Builder) AdminSocket(path string) *Builder {
	b.admin().Socket = &stringSetting{v: path}
	return b
}

// AdminSocketMode sets [admin] socket_mode.
func (b *Builder) AdminSocketMode(mode fs.FileMode) *Builder {
	b.admin().SocketMode = &modeSetting{v: mode}
	return b
}

// AdminSocketGroup sets [admin] socket_group.
func (b *Builder) AdminSocketGroup(group string) *Builder {
	b.admin().SocketGroup = &stringSetting{v: group}
	return b
}

// AdminSocketRole adds one entry to [admin] socket_roles: who is written as
// in the file ("user:root", "gid:1001"), role as in the users file. A who
// without a known kind is reported by Build.
func (b *Builder) AdminSocketRole(who, role string) *Builder {
	a := b.admin()
	if a.SocketRoles == nil {
		a.SocketRoles = &socketRolesSetting{}
	}
	// The entries go through the parser, so the Builder checks them as
	// the file's decoder does; the first error is kept.
	if a.SocketRoles.err == nil {
		m := map[string]any{who: role}
		for _, sr := range a.SocketRoles.v {
			m[sr.Kind+":"+sr.Name] = sr.Role
		}
		a.SocketRoles.v, a.SocketRoles.err = socketRolesParser{}.parse(m)
	}
	return b
}

// AdminTLS sets [admin] tls_cert and tls_key.
func (b *Builder) AdminTLS(certFile string, key Secret) *Builder {
	b.admin().TLSCert = &stringSetting{v: certFile}
	b.admin().TLSKey = &secretSetting{v: key}
	return b
}

// AdminTLSClientCA sets [admin] tls_client_ca and, when not "",
// tls_client_auth.
func (b *Builder) AdminTLSClientCA(caFile, auth string) *Builder {
	b.admin().TLSClientCA = &stringSetting{v: caFile}
	if auth != "" {
		b.admin().TLSClientAuth = &stringSetting{v: auth}
	}
	return b
}

// AdminAuditLog sets [admin] audit_log and audit_key.
func (b *Builder) AdminAuditLog(path string, key Secret) *Builder {
	b.admin().AuditLog = &stringSetting{v: path}
	b.admin().AuditKey = &secretSetting{v: key}
	return b
}

// AdminAuditRotation sets [admin] audit_max_size (bytes) and audit_keep.
func (b *Builder) AdminAuditRotation(maxSize, keep int) *Builder {
	b.admin().AuditMaxSize = &sizeSetting{v: maxSize}
	b.admin().AuditKeep = &intSetting{v: keep}
	return b
}

// AdminLimits sets [admin] max_connections and max_requests.
func (b *Builder) AdminLimits(connections, requests int) *Builder {
	b.admin().MaxConnections = &intSetting{v: connections}
	b.admin().MaxRequests = &intSetting{v: requests}
	return b
}
