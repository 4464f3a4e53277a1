package uac

import (
	"context"
	"crypto/md5"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// registrar is a fake pipeline.Sender that answers REGISTERs as a
// registrar does: 401 without credentials, then code, granting grant
// seconds to the Contact.
type registrar struct {
	code  int
	grant string

	mu   sync.Mutex
	sent []*sip.Request
}

func (r *registrar) Send(_ context.Context, req *sip.Request) (*sip.Response, error) {
	r.mu.Lock()
	r.sent = append(r.sent, req)
	r.mu.Unlock()
	if req.GetHeader("Authorization") == nil {
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="r", nonce="n", qop="auth"`))
		return res, nil
	}
	res := sip.NewResponseFromRequest(req, r.code, "Answer", nil)
	if r.code == 200 && req.GetHeader("Expires").Value() != "0" {
		c := req.Contact().Clone()
		c.Params.Add("expires", r.grant)
		res.AppendHeader(c)
	}
	return res, nil
}

// requests returns the REGISTERs sent with credentials, and their Expires.
func (r *registrar) requests() (cseqs []uint32, expires []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.sent {
		if req.GetHeader("Authorization") != nil {
			cseqs = append(cseqs, req.CSeq().SeqNo)
			expires = append(expires, req.GetHeader("Expires").Value())
		}
	}
	return cseqs, expires
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRegistration(t *testing.T) {
	accounts, err := ParseAccounts("u:r:"+hexSum(md5.New, "u:r:pw")+":-\n", "creds")
	if err != nil {
		t.Fatal(err)
	}
	set := func() RegisterSettings {
		var s RegisterSettings
		_ = sip.ParseUri("sip:127.0.0.1:5090", &s.Registrar)
		_ = sip.ParseUri("sip:u@example.net", &s.AOR)
		_ = sip.ParseUri("sip:u@127.0.0.1:5060", &s.Contact)
		s.Expires, s.Retry, s.Credentials = time.Minute, time.Hour, accounts
		return s
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Run("refreshed and unregistered", func(t *testing.T) {
		reg := &registrar{code: 200, grant: "1"}
		r := NewRegistration(reg, log, set())
		// Granted 1 s: renewed after half of it, twice within 2 s.
		waitFor(t, "two refreshes", func() bool { c, _ := reg.requests(); return len(c) >= 3 })
		info := r.Registrations()[0]
		if info.State != "registered" || info.LastError != "" || !info.Expires.After(info.Updated) {
			t.Errorf("state %+v", info)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		cseqs, expires := reg.requests()
		if expires[0] != "60" || expires[len(expires)-1] != "0" {
			t.Errorf("Expires %v, want 60 first and 0 last", expires)
		}
		for i := 1; i < len(cseqs); i++ {
			if cseqs[i] <= cseqs[i-1] {
				t.Errorf("CSeqs %v do not grow", cseqs)
			}
		}
	})
	t.Run("refused", func(t *testing.T) {
		reg := &registrar{code: 403}
		r := NewRegistration(reg, log, set())
		waitFor(t, "a failure", func() bool { return r.Registrations()[0].State == "failed" })
		info := r.Registrations()[0]
		if !strings.Contains(info.LastError, "403") || info.Failures != 1 || !info.Refresh.After(info.Updated) {
			t.Errorf("state %+v", info)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if _, expires := reg.requests(); len(expires) != 1 {
			t.Errorf("REGISTERs with credentials %v: a failed registration is not unregistered", expires)
		}
	})
}

func TestRefreshAfter(t *testing.T) {
	tests := []struct{ granted, want time.Duration }{
		{time.Hour, time.Hour - 30*time.Second},
		{time.Minute, 30 * time.Second},
		{10 * time.Second, 5 * time.Second},
	}
	for i, tc := range tests {
		if got := refreshAfter(tc.granted); got != tc.want {
			t.Errorf("test %d: %s, want %s", i, got, tc.want)
		}
	}
}
