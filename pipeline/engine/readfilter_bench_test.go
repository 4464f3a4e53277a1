package engine

import (
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/guard"
)

// benchInvite is a typical INVITE from a phone, with SDP.
var benchInvite = func() []byte {
	sdp := "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n" +
		"m=audio 49170 RTP/AVP 0 8 97 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:97 iLBC/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\n"
	return []byte("INVITE sip:bob@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"To: Bob <sip:bob@example.com>\r\n" +
		"From: Alice <sip:alice@example.com>;tag=1928301774\r\n" +
		"Call-ID: a84b4c76e66710@pc33.example.com\r\n" +
		"CSeq: 314159 INVITE\r\n" +
		"Contact: <sip:alice@192.0.2.10:5060>\r\n" +
		"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, MESSAGE, INFO, UPDATE\r\n" +
		"User-Agent: Linphone/5.2.0\r\n" +
		"Content-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp)
}()

// BenchmarkReadFilter measures what the read filter costs a message on
// the hot path, against an engine without stages.
func BenchmarkReadFilter(b *testing.B) {
	e := &Engine{guard: guard.New(guard.Limits{}, slog.New(slog.DiscardHandler))}
	udp := sip.TransportReadProps{
		Transport:  "UDP",
		LocalAddr:  &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5060},
		RemoteAddr: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 5060},
	}
	e.watchParses(e.addShare(fakePacketConn{local: udp.LocalAddr}))
	tcp := sip.TransportReadProps{
		Transport:  "TCP",
		LocalAddr:  &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5060},
		RemoteAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 40000},
	}
	response := []byte("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-sb-1\r\n" + string(benchInvite[len("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"):]))
	rfc2543 := torture(b, "inv2543.dat")
	tests := []struct {
		name string
		info sip.TransportReadProps
		data []byte
	}{
		{"UDP INVITE", udp, benchInvite},
		{"UDP response", udp, response},
		{"TCP INVITE", tcp, benchInvite},
		{"UDP RFC 2543 INVITE", udp, rfc2543},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.readFilter(tc.info, tc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkHasRFC3261Branch(b *testing.B) {
	for b.Loop() {
		if !hasRFC3261Branch(benchInvite) {
			b.Fatal("no branch")
		}
	}
}

// BenchmarkParseWatch measures what watching for unparsable datagrams
// costs one that parses: the note, the clearing when sipgo delivers the
// message, and the look at the note before the next read.
func BenchmarkParseWatch(b *testing.B) {
	e := &Engine{}
	local := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5060}
	from := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 5060}
	w := e.watchParses(fakePacketConn{local: local}).(*parseWatch)
	msg, err := sip.NewParser().ParseSIP(benchInvite)
	if err != nil {
		b.Fatal(err)
	}
	msg.SetTransport("UDP")
	msg.SetSource(from.String())
	b.ReportAllocs()
	for b.Loop() {
		e.sawDatagram(local, from, benchInvite)
		e.delivered(msg)
		w.settle()
	}
}

// BenchmarkSipgoParse is the reference: what sipgo's parser costs the same
// message.
func BenchmarkSipgoParse(b *testing.B) {
	p := sip.NewParser()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ParseSIP(benchInvite); err != nil {
			b.Fatal(err)
		}
	}
}
