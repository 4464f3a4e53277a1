package engine

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
)

// authUserStage is a test stage: it authenticates every request as alice
// and refuses it with 403, as the auth stage does with a From that is not
// alice's, and writes the AuthUser the response stages see into the
// response's X-Auth-User header.
type authUserStage struct{}

func (*authUserStage) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	ctx.AuthUser = "alice"
	ctx.Reply(403, "Forbidden")
	return pipeline.Replied, nil
}

func (*authUserStage) ServeResponse(ctx *pipeline.ResponseContext) error {
	ctx.Response.AppendHeader(sip.NewHeader("X-Auth-User", ctx.AuthUser))
	return nil
}

// registerAuthUser registers authUserStage as test_auth_user, once.
var registerAuthUser = sync.OnceFunc(func() {
	pipeline.Register(pipeline.StageInfo{Name: "test_auth_user", Description: "test", New: func() pipeline.Stage { return new(authUserStage) }})
})

// testClient makes the engine's current pipeline one of stages, and
// returns a UDP socket on 127.0.0.1 to send it requests from.
func (e *Engine) testClient(t *testing.T, stages ...config.Stage) net.PacketConn {
	t.Helper()
	cfg := e.current.Load().Config
	cfg.Stages = stages
	p, err := pipeline.Build(cfg, e.svc)
	if err != nil {
		t.Fatal(err)
	}
	e.current.Store(p)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// TestResponseAuthUser checks that the response stages see the AuthUser
// the request stages set: "" on the 100 Trying, sent before they ran, and
// alice on the 403.
func TestResponseAuthUser(t *testing.T) {
	registerAuthUser()
	e := testEngine(t, 65535)
	pc := e.testClient(t, config.Stage{Index: 1, Use: "test_auth_user", Keys: map[string]any{}})
	dst, _ := net.ResolveUDPAddr("udp4", e.testAddr("UDP"))
	msg := fmt.Sprintf("INVITE sip:bob@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-authuser\r\n"+
		"From: <sip:carol@127.0.0.1>;tag=a\r\n"+
		"To: <sip:bob@%s>\r\n"+
		"Call-ID: authuser\r\n"+
		"CSeq: 1 INVITE\r\n"+
		"Contact: <sip:carol@%s>\r\n"+
		"Max-Forwards: 70\r\n"+
		"Content-Length: 0\r\n\r\n", dst, pc.LocalAddr(), dst, pc.LocalAddr())
	if _, err := pc.WriteTo([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"100": "X-Auth-User: \r\n", "403": "X-Auth-User: alice\r\n"}
	buf := make([]byte, 65535)
	for len(want) > 0 {
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no answer %q: %v", want, err)
		}
		res := string(buf[:n])
		code := strings.Fields(res)[1]
		if !strings.Contains(res, want[code]) {
			t.Errorf("the %s has no %q:\n%s", code, want[code], res)
		}
		delete(want, code)
	}
}
