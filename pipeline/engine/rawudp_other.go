//go:build !linux

package engine

import "net"

// rawUDPConn returns c: raw reads and writes are Linux's here.
func rawUDPConn(c *net.UDPConn) net.PacketConn { return c }
