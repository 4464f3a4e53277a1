package calllog

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
)

// media is what the call log needs to know of one party's session
// description (RFC 4566, RFC 3264).
type media struct {
	// known is false when there was no SDP to read.
	known bool
	// held is true when the main stream (the first audio stream with a
	// port, else the first stream with a port) is sendonly or inactive, or
	// its connection address is 0.0.0.0 (RFC 2543 hold).
	held bool
	// sendrecv is true when the main stream is sendrecv and not held.
	sendrecv bool
	// video is true when a video stream has a port other than 0.
	video bool
}

// stream is what parseSDP keeps of one m= section.
type stream struct {
	// audio and video tell the media type.
	audio, video bool
	// port is true when the port is not 0 (nor missing).
	port bool
	// conn is the c= address, nil for none.
	conn []byte
	// dir is the direction attribute, "" for none.
	dir string
}

// parseSDP reads a session description. A body that is not SDP gives a
// media that is not known. It reads the body where it lies, one line after
// the other, and allocates nothing.
func parseSDP(body []byte) media {
	if !bytes.HasPrefix(bytes.TrimLeft(body, "\r\n\t "), []byte("v=")) {
		return media{}
	}
	m := media{known: true}
	// session holds the session-level c= and a= lines; main is the first
	// audio stream with a port, else the first stream with a port.
	var session, cur, main stream
	inStream, hasMain := false, false
	endStream := func() {
		if !inStream || !cur.port {
			return
		}
		m.video = m.video || cur.video
		if !hasMain || (!main.audio && cur.audio) {
			main, hasMain = cur, true
		}
	}
	for rest := body; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		val := line[2:]
		// section is where a c= or a= line belongs: the session or the
		// m= section it follows.
		section := &session
		if inStream {
			section = &cur
		}
		switch line[0] {
		case 'm':
			// m=audio 7078[/count] RTP/AVP 0
			endStream()
			kind := field(val, 0)
			port, _, _ := bytes.Cut(field(val, 1), []byte("/"))
			cur = stream{audio: lowerIs(kind, "audio"), video: lowerIs(kind, "video"), port: len(port) > 0 && string(port) != "0"}
			inStream = true
		case 'c':
			// c=IN IP4 192.0.2.1[/ttl]
			section.conn, _, _ = bytes.Cut(field(val, 2), []byte("/"))
		case 'a':
			if d := direction(val); d != "" {
				section.dir = d
			}
		}
	}
	endStream()
	if !hasMain {
		return m
	}
	dir, conn := main.dir, main.conn
	if dir == "" {
		dir = session.dir
	}
	if dir == "" {
		dir = "sendrecv"
	}
	if len(conn) == 0 {
		conn = session.conn
	}
	m.held = dir == "sendonly" || dir == "inactive" || string(conn) == "0.0.0.0"
	m.sendrecv = dir == "sendrecv" && !m.held
	return m
}

// directions are the values of the direction attributes (RFC 4566 6).
var directions = [...]string{"sendrecv", "sendonly", "recvonly", "inactive"}

// direction returns the direction an a= line's value sets, in lower case,
// or "" when it sets none.
func direction(val []byte) string {
	val = bytes.TrimSpace(val)
	for _, d := range directions {
		if lowerIs(val, d) {
			return d
		}
	}
	return ""
}

// field returns field n (from 0) of s, split around runs of white space
// as strings.Fields splits it; nil when s has fewer fields.
func field(s []byte, n int) []byte {
	for i := skip(s, 0, true); i < len(s); i = skip(s, i, true) {
		end := skip(s, i, false)
		if n == 0 {
			return s[i:end]
		}
		n, i = n-1, end
	}
	return nil
}

// skip returns the index in s past the characters from i that are white
// space (space true) or are not (space false), as unicode.IsSpace tells;
// a byte that is not UTF-8 is not space.
func skip(s []byte, i int, space bool) int {
	for i < len(s) {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(s[i:])
		}
		if unicode.IsSpace(r) != space {
			break
		}
		i += size
	}
	return i
}

// lowerIs reports whether s in lower case (strings.ToLower) is word, a
// word in lower-case ASCII, without making the lower-case copy.
func lowerIs(s []byte, word string) bool {
	i := 0
	for len(s) > 0 {
		r, size := rune(s[0]), 1
		switch {
		case 'A' <= r && r <= 'Z':
			r += 'a' - 'A'
		case r >= utf8.RuneSelf:
			r, size = utf8.DecodeRune(s)
			r = unicode.ToLower(r)
		}
		if i == len(word) || r != rune(word[i]) {
			return false
		}
		s, i = s[size:], i+1
	}
	return i == len(word)
}

// sdpOf returns the session description of a message, if its body is SDP.
func sdpOf(msg sip.Message) media {
	body := msg.Body()
	if len(body) == 0 {
		return media{}
	}
	if ct, ok := contentType(msg); ok {
		v, _, _ := strings.Cut(ct, ";")
		if !strings.EqualFold(strings.TrimSpace(v), "application/sdp") {
			return media{}
		}
	}
	return parseSDP(body)
}

// contentType returns the value of the first Content-Type header of msg,
// and whether it has one. It compares the headers' names itself, for
// GetHeaders makes a lower-case copy of most of them.
func contentType(msg sip.Message) (string, bool) {
	var hs []sip.Header
	switch m := msg.(type) {
	case *sip.Request:
		hs = m.Headers()
	case *sip.Response:
		hs = m.Headers()
	default:
		if cts := msg.GetHeaders("Content-Type"); len(cts) > 0 {
			return cts[0].Value(), true
		}
		return "", false
	}
	for _, h := range hs {
		if strings.EqualFold(h.Name(), "Content-Type") {
			return h.Value(), true
		}
	}
	return "", false
}

// classify names a re-INVITE by its offer next, against prev, the sender's
// last session description, and whether video flows in the call: HOLD,
// RESUME, VIDEO ON, VIDEO OFF, in that order of precedence, else SWITCH
// INVITE.
func classify(prev media, videoActive bool, next media) kind {
	if !next.known {
		return evSwitchInvite
	}
	prevHeld := prev.known && prev.held
	switch {
	case !prevHeld && next.held:
		return evHold
	case prevHeld && next.sendrecv:
		return evResume
	case !videoActive && next.video:
		return evVideoOn
	case videoActive && !next.video:
		return evVideoOff
	}
	return evSwitchInvite
}
