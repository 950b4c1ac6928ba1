package main

import "testing"

func TestStreamSupport(t *testing.T) {
	tests := []struct {
		name             string
		v                string
		builtIn, dynamic bool
		path             string
	}{
		{
			name:    "Debian dynamic module",
			v:       "nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx --modules-path=/usr/lib/nginx/modules --with-stream=dynamic --with-stream_ssl_module",
			dynamic: true,
			path:    "/usr/lib/nginx/modules",
		},
		{
			name:    "built in",
			v:       "configure arguments: --with-stream --with-stream_realip_module",
			builtIn: true,
		},
		{
			name: "without stream; stream_* options alone do not count",
			v:    "configure arguments: --with-stream_ssl_module --with-http_ssl_module",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			builtIn, dynamic, path := streamSupport(tt.v)
			if builtIn != tt.builtIn || dynamic != tt.dynamic || path != tt.path {
				t.Fatalf("streamSupport = %v, %v, %q; want %v, %v, %q", builtIn, dynamic, path, tt.builtIn, tt.dynamic, tt.path)
			}
		})
	}
}
