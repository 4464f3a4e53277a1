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
//   - parseSDP reads both as referenceSDP, the reader it replaced, does;
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
		// Unicode white space and case, as strings.Fields, TrimSpace and
		// ToLower read them ("AUD\u0130O" is "audio" in lower case).
		{"v=0\nm=AUD\u0130O\u00a07078\u0085RTP/AVP 0\nc=IN\u2003IP4 0.0.0.0/1", "v=0\nm=VIDEO\t9\nm=\xffaudio 1\na=\u00a0SENDONLY\u0085\nc=IN IP4\v0.0.0.0\r\r", true, "application/\u017fdp"},
		{"v=0\nm=audio 00 RTP\nm=text 5\na=Inactive\nm=audio 6\nc=IN IP4 0.0.0.0", "\r\n\t v=0\na=sendrecv\nm=audio 1/2\na=recvonly \nm=video 0\nc=IN IP4", false, ""},
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
		for _, body := range [][]byte{prev, next} {
			if got, want := parseSDP(body), referenceSDP(body); got != want {
				t.Fatalf("parseSDP reads %+v, referenceSDP %+v\n%q", got, want, body)
			}
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

// referenceStream is one m= section, for referenceSDP.
type referenceStream struct {
	kind string
	port string
	conn string
	dir  string
}

// referenceSDP is the reader parseSDP replaced, which splits the body
// into lines and fields: parseSDP must read every body as it does.
func referenceSDP(body []byte) media {
	text := string(body)
	if !strings.HasPrefix(strings.TrimLeft(text, "\r\n\t "), "v=") {
		return media{}
	}
	sessConn, sessDir := "", ""
	var streams []*referenceStream
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		val := line[2:]
		var cur *referenceStream
		if len(streams) > 0 {
			cur = streams[len(streams)-1]
		}
		switch line[0] {
		case 'm':
			f := strings.Fields(val)
			s := &referenceStream{}
			if len(f) > 0 {
				s.kind = strings.ToLower(f[0])
			}
			if len(f) > 1 {
				// "port/count"
				s.port, _, _ = strings.Cut(f[1], "/")
			}
			streams = append(streams, s)
		case 'c':
			// c=IN IP4 192.0.2.1[/ttl]
			f := strings.Fields(val)
			addr := ""
			if len(f) > 2 {
				addr, _, _ = strings.Cut(f[2], "/")
			}
			if cur == nil {
				sessConn = addr
			} else {
				cur.conn = addr
			}
		case 'a':
			switch d := strings.ToLower(strings.TrimSpace(val)); d {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				if cur == nil {
					sessDir = d
				} else {
					cur.dir = d
				}
			}
		}
	}
	m := media{known: true}
	var main *referenceStream
	for _, s := range streams {
		if s.port == "0" || s.port == "" {
			continue
		}
		if s.kind == "video" {
			m.video = true
		}
		if main == nil && s.kind == "audio" {
			main = s
		}
	}
	if main == nil {
		for _, s := range streams {
			if s.port != "0" && s.port != "" {
				main = s
				break
			}
		}
	}
	if main == nil {
		return m
	}
	dir, conn := main.dir, main.conn
	if dir == "" {
		dir = sessDir
	}
	if dir == "" {
		dir = "sendrecv"
	}
	if conn == "" {
		conn = sessConn
	}
	m.held = dir == "sendonly" || dir == "inactive" || conn == "0.0.0.0"
	m.sendrecv = dir == "sendrecv" && !m.held
	return m
}
