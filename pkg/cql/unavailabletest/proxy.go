// Package unavailabletest makes the database unavailable to one client
// without touching the shared local stack: a loopback TCP proxy in front of
// Cassandra that a test cuts, and a session that reaches Cassandra only
// through it.
package unavailabletest

import (
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
)

// Proxy forwards loopback TCP to upstream until Cut, when it closes its
// listener and every connection: to its clients the database is gone.
type Proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

// NewProxy listens on a free loopback port and forwards to upstream
// (host:port); it is cut when the test ends.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &Proxy{ln: ln}
	go p.serve(upstream)
	t.Cleanup(p.Cut)
	return p
}

// ProxyTo is NewProxy in front of a node given as in cql.Config: a host,
// with or without its port, and the port to use when it has none.
func ProxyTo(t testing.TB, host string, port int) *Proxy {
	t.Helper()
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, fmt.Sprint(port))
	}
	return NewProxy(t, host)
}

// ShuttingDown is the error frame Cassandra sends while it drains: a
// server error whose only tell is its message.
type ShuttingDown struct{}

// Code is the frame's error code.
func (ShuttingDown) Code() int { return gocql.ErrCodeServer }

// Message is the frame's message.
func (ShuttingDown) Message() string { return "Server is shutting down" }

func (ShuttingDown) Error() string { return "Server is shutting down" }

func (p *Proxy) serve(upstream string) {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", upstream, 5*time.Second)
		if err != nil {
			_ = down.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, down, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, down); _ = up.Close() }()
		go func() { _, _ = io.Copy(down, up); _ = down.Close() }()
	}
}

// Addr is where the proxy listens.
func (p *Proxy) Addr() *net.TCPAddr { return p.ln.Addr().(*net.TCPAddr) }

// Cut closes the listener and every connection; new ones are refused.
func (p *Proxy) Cut() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// Session connects to keyspace through p only (the node's announced
// address is translated back to the proxy), with short timeouts and the
// driver's log discarded; it is closed when the test ends.
func Session(t testing.TB, p *Proxy, keyspace string) *gocql.Session {
	t.Helper()
	addr := p.Addr()
	cluster := gocql.NewCluster(addr.String())
	cluster.Keyspace = keyspace
	cluster.DisableInitialHostLookup = true
	cluster.AddressTranslator = gocql.AddressTranslatorFunc(func(net.IP, int) (net.IP, int) { return addr.IP, addr.Port })
	cluster.Timeout = 2 * time.Second
	cluster.ConnectTimeout = 2 * time.Second
	cluster.Consistency = gocql.LocalQuorum
	cluster.SerialConsistency = gocql.LocalSerial
	cluster.Logger = log.New(io.Discard, "", 0)
	cluster.ReconnectionPolicy = &gocql.ConstantReconnectionPolicy{MaxRetries: 1, Interval: 100 * time.Millisecond}
	s, err := cluster.CreateSession()
	if err != nil {
		t.Fatalf("session through the proxy: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
