package calllog

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzSDP reads two session descriptions, the sender's last and a
// re-INVITE's, classifies the re-INVITE, and reads the second from a
// message with the given Content-Type. Nothing may panic, and:
//   - a body that is not SDP gives a media that is not known;
//   - held, sendrecv and video are only set on a known media, and a held
//     stream is never sendrecv;
//   - the classification is one of the five events;
//   - LF and CRLF line ends read the same;
//   - sdpOf reads the body as parseSDP does when its Content-Type is
//     application/sdp (or absent), and not at all otherwise.
//
// The seed corpus is the SDP of the tests, of the RFC 4475 torture
// messages and of the Linphone calls of the seed (testdata/fuzz/FuzzSDP).
func FuzzSDP(f *testing.F) {
	audio := sdp("", "127.0.0.2", -1)
	seeds := []struct {
		prev, next string
		video      bool
		ct         string
	}{
		{audio, sdp("sendonly", "127.0.0.2", -1), false, "application/sdp"},
		{audio, sdp("inactive", "127.0.0.2", -1), false, ""},
		{audio, sdp("", "0.0.0.0", -1), false, "application/SDP; charset=utf-8"},
		{sdp("sendonly", "127.0.0.2", -1), sdp("sendrecv", "127.0.0.2", -1), false, "application/sdp"},
		{audio, sdp("", "127.0.0.2", 9078), false, "application/sdp"},
		{sdp("", "127.0.0.2", 9078), sdp("", "127.0.0.2", 0), true, "application/sdp"},
		{"", "v=0\nc=IN IP4 127.0.0.2\na=inactive\nm=audio 7078 RTP/AVP 0\na=sendrecv", false, "application/sdp"},
		{audio, "not sdp", false, "text/plain"},
		{audio, strings.ReplaceAll(sdp("sendonly", "127.0.0.2", -1), "\n", "\r\n"), true, "multipart/mixed;boundary=x"},
		{"v=0\r\nm=audio 0 RTP/AVP 0\r\nm=video 5/2 RTP/AVP 31\r\nc=IN IP4 224.2.1.1/127/3", "v=\nm=\nc=\na=\n=\nm", false, ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.prev), []byte(s.next), s.video, s.ct)
	}
	kinds := map[kind]bool{evHold: true, evResume: true, evVideoOn: true, evVideoOff: true, evSwitchInvite: true}
	f.Fuzz(func(t *testing.T, prev, next []byte, videoActive bool, contentType string) {
		p, n := parseSDP(prev), parseSDP(next)
		for _, m := range []media{p, n} {
			if !m.known && m != (media{}) {
				t.Fatalf("unknown media with fields set: %+v", m)
			}
			if m.held && m.sendrecv {
				t.Fatalf("held and sendrecv: %+v", m)
			}
		}
		if !bytes.HasPrefix(bytes.TrimLeft(next, "\r\n\t "), []byte("v=")) && n.known {
			t.Fatalf("a body that does not start with v= read as SDP: %+v\n%q", n, next)
		}
		if k := classify(p, videoActive, n); !kinds[k] {
			t.Fatalf("classify: kind %d", k)
		}
		crlf := bytes.ReplaceAll(bytes.ReplaceAll(next, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		if got := parseSDP(crlf); got != n {
			t.Fatalf("CRLF reads %+v, LF reads %+v\n%q", got, n, next)
		}

		if strings.ContainsAny(contentType, "\r\n") || len(next) == 0 {
			return
		}
		head := "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1\r\nCSeq: 2 INVITE\r\n"
		if contentType != "" {
			head += "Content-Type: " + contentType + "\r\n"
		}
		head += "Content-Length: " + strconv.Itoa(len(next)) + "\r\n\r\n"
		msg, err := sip.ParseMessage(append([]byte(head), next...))
		if err != nil {
			return
		}
		got := sdpOf(msg)
		ct, hasCT := "", false
		if hs := msg.GetHeaders("Content-Type"); len(hs) > 0 {
			ct, _, _ = strings.Cut(hs[0].Value(), ";")
			ct, hasCT = strings.TrimSpace(ct), true
		}
		switch {
		case !hasCT || strings.EqualFold(ct, "application/sdp"):
			if want := parseSDP(msg.Body()); got != want {
				t.Fatalf("sdpOf %+v, parseSDP %+v (Content-Type %q)", got, want, contentType)
			}
		case got != (media{}):
			t.Fatalf("sdpOf read a %q body: %+v", ct, got)
		}
	})
}
