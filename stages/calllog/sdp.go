package calllog

import (
	"strings"

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

// stream is one m= section.
type stream struct {
	kind string
	port string
	conn string
	dir  string
}

// parseSDP reads a session description. A body that is not SDP gives a
// media that is not known.
func parseSDP(body []byte) media {
	text := string(body)
	if !strings.HasPrefix(strings.TrimLeft(text, "\r\n\t "), "v=") {
		return media{}
	}
	sessConn, sessDir := "", ""
	var streams []*stream
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		val := line[2:]
		var cur *stream
		if len(streams) > 0 {
			cur = streams[len(streams)-1]
		}
		switch line[0] {
		case 'm':
			f := strings.Fields(val)
			s := &stream{}
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
	var main *stream
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

// sdpOf returns the session description of a message, if its body is SDP.
func sdpOf(msg sip.Message) media {
	body := msg.Body()
	if len(body) == 0 {
		return media{}
	}
	if cts := msg.GetHeaders("Content-Type"); len(cts) > 0 {
		v, _, _ := strings.Cut(cts[0].Value(), ";")
		if !strings.EqualFold(strings.TrimSpace(v), "application/sdp") {
			return media{}
		}
	}
	return parseSDP(body)
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
