package logs

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// ident names the process in syslog and the journal.
const ident = "switchboard"

// datagram sends each log record as one datagram to a local unix socket:
// syslog's /dev/log or journald's native socket. The record is formatted
// by a text or JSON handler, without the time the receiver stamps.
type datagram struct {
	mu     sync.Mutex
	socket string
	conn   net.Conn
	buf    bytes.Buffer
	encode func(w *bytes.Buffer, level slog.Level, line []byte)
}

func dialDatagram(socket string, encode func(*bytes.Buffer, slog.Level, []byte)) (*datagram, error) {
	d := &datagram{socket: socket, encode: encode}
	if err := d.dial(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *datagram) dial() error {
	c, err := net.Dial("unixgram", d.socket)
	if err != nil {
		return err
	}
	d.conn = c
	return nil
}

// send formats r with format into a datagram and sends it, dialling again
// once if the receiver restarted.
func (d *datagram) send(ctx context.Context, format slog.Handler, line *bytes.Buffer, r slog.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	line.Reset()
	if err := format.Handle(ctx, r); err != nil {
		return err
	}
	d.buf.Reset()
	d.encode(&d.buf, r.Level, bytes.TrimRight(line.Bytes(), "\n"))
	if _, err := d.conn.Write(d.buf.Bytes()); err != nil {
		_ = d.conn.Close()
		if err := d.dial(); err != nil {
			return err
		}
		_, err = d.conn.Write(d.buf.Bytes())
		return err
	}
	return nil
}

func (d *datagram) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn.Close()
}

// datagramHandler formats records with format, which writes to line, and
// sends them through d. line is shared by the handlers derived from one
// base and guarded by d's lock.
type datagramHandler struct {
	d      *datagram
	format slog.Handler
	line   *bytes.Buffer
}

func (h datagramHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h datagramHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.d.send(ctx, h.format, h.line, r)
}

func (h datagramHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return datagramHandler{d: h.d, format: h.format.WithAttrs(attrs), line: h.line}
}

func (h datagramHandler) WithGroup(name string) slog.Handler {
	return datagramHandler{d: h.d, format: h.format.WithGroup(name), line: h.line}
}

// severity is the syslog severity of a level (RFC 5424: 3 error, 4
// warning, 6 informational, 7 debug).
func severity(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// facilityDaemon is syslog's daemon facility (3), shifted.
const facilityDaemon = 3 << 3

// syslogLine encodes a record in the local syslog format that /dev/log
// readers (rsyslog, journald) take: <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG.
func syslogLine(w *bytes.Buffer, l slog.Level, line []byte) {
	fmt.Fprintf(w, "<%d>%s %s[%d]: ", facilityDaemon|severity(l), time.Now().Format(time.Stamp), ident, os.Getpid())
	w.Write(line)
}

// journalFields encodes a record in journald's native protocol: one
// FIELD=value line each, or, for a value with a newline, the field name,
// a newline, its length as 64-bit little endian, and the value.
func journalFields(w *bytes.Buffer, l slog.Level, line []byte) {
	fmt.Fprintf(w, "PRIORITY=%d\nSYSLOG_FACILITY=3\nSYSLOG_IDENTIFIER=%s\n", severity(l), ident)
	if bytes.IndexByte(line, '\n') < 0 {
		w.WriteString("MESSAGE=")
		w.Write(line)
		w.WriteByte('\n')
		return
	}
	w.WriteString("MESSAGE\n")
	_ = binary.Write(w, binary.LittleEndian, uint64(len(line)))
	w.Write(line)
	w.WriteByte('\n')
}
