package engine

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
)

// holdStage holds every request until release is closed, and notes in
// served the requests it let through; Cleanup, which the calllog stage
// and others use to close what ServeRequest writes to, touches served too.
type holdStage struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	serving atomic.Int32
	// cleanedWhileServing counts the Cleanups that ran under a request.
	cleanedWhileServing atomic.Int32
	served              int
}

func (s *holdStage) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	s.serving.Add(1)
	defer s.serving.Add(-1)
	s.entered <- struct{}{}
	<-s.release
	s.served++
	ctx.Reply(200, "OK")
	return pipeline.Replied, nil
}

func (s *holdStage) Cleanup() error {
	if s.serving.Load() > 0 {
		s.cleanedWhileServing.Add(1)
	}
	s.served = -1
	s.letGo()
	return nil
}

func (s *holdStage) letGo() { s.once.Do(func() { close(s.release) }) }

var theHoldStage = &holdStage{entered: make(chan struct{}, 1), release: make(chan struct{})}

var registerHold = sync.OnceFunc(func() {
	pipeline.Register(pipeline.StageInfo{Name: "test_hold", Description: "test", New: func() pipeline.Stage { return theHoldStage }})
})

// TestShutdownWaitsForThePipeline sends a request that a stage holds while
// the drain times out: Shutdown must take the pipeline out of service and
// clean its stages up only once the request is through them, never under
// it (an ACK during a stop raced calllog's Cleanup against its
// ServeRequest).
func TestShutdownWaitsForThePipeline(t *testing.T) {
	registerHold()
	s := theHoldStage
	e, err := New(&pipeline.Services{}, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := config.ParseListen("udp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Listen([]config.Listen{l}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("hold.toml", []byte("[[stage]]\nuse = \"test_hold\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Build(cfg, e.svc)
	if err != nil {
		t.Fatal(err)
	}
	e.Use(p)
	e.Start()

	conn, err := net.Dial("udp", e.testAddr("UDP"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := "MESSAGE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-hold-1\r\n" +
		"From: <sip:alice@example.org>;tag=1\r\nTo: <sip:bob@example.org>\r\nCall-ID: hold-1\r\nCSeq: 1 MESSAGE\r\n" +
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.entered:
	case <-time.After(coreWait):
		t.Fatal("the request never reached the stage")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- e.Shutdown(ctx) }()
	// The request goes on once the pipeline is out of service, or, when
	// Shutdown does not wait for it, once Cleanup ran under it.
	poll(t, "the pipeline out of service, or cleaned up", func() bool {
		return e.current.Load() == nil || s.cleanedWhileServing.Load() > 0
	})
	s.letGo()
	select {
	case <-stopped:
	case <-time.After(coreWait):
		t.Fatal("Shutdown did not return")
	}
	if n := s.cleanedWhileServing.Load(); n > 0 {
		t.Errorf("the pipeline was cleaned up while a request was in a stage")
	}
	if s.served != -1 {
		t.Errorf("served = %d after Shutdown, want -1: Cleanup ran before the request was through", s.served)
	}
}
