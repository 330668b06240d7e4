package httpserve

import (
	"net"
	"testing"
)

func TestBaseURL(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}, "http://127.0.0.1:80"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "http://127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 1}, "http://[::1]:1"},
	}
	for _, tt := range tests {
		if got := BaseURL(tt.addr); got != tt.want {
			t.Errorf("BaseURL(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}
