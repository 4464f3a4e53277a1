package calllog

import (
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

func TestClassify(t *testing.T) {
	audio := sdp("", "127.0.0.2", -1)
	tests := []struct {
		prev  string // the sender's last SDP; "" for none
		video bool   // whether video flows in the call
		next  string // the re-INVITE's SDP; "" for none
		want  kind
	}{
		// 0-5: hold.
		{prev: audio, next: sdp("sendonly", "127.0.0.2", -1), want: evHold},
		{prev: audio, next: sdp("inactive", "127.0.0.2", -1), want: evHold},
		{prev: audio, next: sdp("", "0.0.0.0", -1), want: evHold},
		{prev: sdp("sendrecv", "127.0.0.2", -1), next: "v=0\nc=IN IP4 127.0.0.2\na=sendonly\nm=audio 7078 RTP/AVP 0", want: evHold},
		{prev: "", next: sdp("sendonly", "127.0.0.2", -1), want: evHold},
		{prev: audio, video: true, next: sdp("sendonly", "127.0.0.2", 0), want: evHold},
		// 6-10: resume.
		{prev: sdp("sendonly", "127.0.0.2", -1), next: sdp("sendrecv", "127.0.0.2", -1), want: evResume},
		{prev: sdp("inactive", "127.0.0.2", -1), next: audio, want: evResume},
		{prev: sdp("", "0.0.0.0", -1), next: audio, want: evResume},
		{prev: "v=0\nc=IN IP4 127.0.0.2\na=inactive\nm=audio 7078 RTP/AVP 0", next: "v=0\nc=IN IP4 127.0.0.2\na=inactive\nm=audio 7078 RTP/AVP 0\na=sendrecv", want: evResume},
		{prev: sdp("sendonly", "127.0.0.2", -1), next: sdp("recvonly", "127.0.0.2", -1), want: evSwitchInvite},
		// 11-16: video.
		{prev: audio, next: sdp("", "127.0.0.2", 9078), want: evVideoOn},
		{prev: sdp("", "127.0.0.2", 9078), video: false, next: sdp("", "127.0.0.2", 9078), want: evVideoOn},
		{prev: sdp("", "127.0.0.2", 9078), video: true, next: sdp("", "127.0.0.2", 0), want: evVideoOff},
		{prev: sdp("", "127.0.0.2", 9078), video: true, next: audio, want: evVideoOff},
		{prev: sdp("", "127.0.0.2", 9078), video: true, next: sdp("", "127.0.0.2", 9080), want: evSwitchInvite},
		{prev: audio, next: sdp("", "127.0.0.2", 0), want: evSwitchInvite},
		// 17-19: nothing to tell.
		{prev: audio, next: audio, want: evSwitchInvite},
		{prev: audio, next: "", want: evSwitchInvite},
		{prev: audio, next: "not sdp", want: evSwitchInvite},
		// 20: CRLF line ends.
		{prev: audio, next: strings.ReplaceAll(sdp("sendonly", "127.0.0.2", -1), "\n", "\r\n"), want: evHold},
	}
	for i, tc := range tests {
		got := classify(parseSDP([]byte(tc.prev)), tc.video, parseSDP([]byte(tc.next)))
		if got != tc.want {
			t.Errorf("test %d: %s, want %s", i, got, tc.want)
		}
	}
}

// TestSDPOf reads the body only when it is SDP.
func TestSDPOf(t *testing.T) {
	tests := []struct {
		contentType string
		want        media
	}{
		{"application/sdp", media{known: true, held: true}},
		{"Application/SDP; charset=utf-8", media{known: true, held: true}},
		{"", media{known: true, held: true}},
		{"multipart/mixed;boundary=x", media{}},
	}
	for i, tc := range tests {
		raw := "INVITE sip:bob@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1\nCSeq: 1 INVITE\n"
		if tc.contentType != "" {
			raw += "Content-Type: " + tc.contentType + "\n"
		}
		raw += "\n" + sdp("inactive", "127.0.0.2", -1)
		if got := sdpOf(stagetest.Request(t, raw+"\n")); got != tc.want {
			t.Errorf("test %d: %+v, want %+v", i, got, tc.want)
		}
	}
}
