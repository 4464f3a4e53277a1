package capture

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// QueueSize is how many messages wait for the sending goroutine at most;
// past it a message is dropped and counted, never waited for.
const QueueSize = 8192

// logEvery bounds the log lines about drops and failures to one per
// interval, with the counts since the last.
const logEvery = 10 * time.Second

// Route is what the messages seen under one config are captured with; a
// reload makes a new one.
type Route struct {
	// Address is the HEP collector (udp://host:port, tcp://host:port);
	// empty sends no HEP.
	Address string
	HEP     HEP
	// PcapDir is the folder of the calls' pcap files; empty writes none.
	PcapDir string
	// Select decides, on the sending goroutine, whether a message goes to
	// the collector (the capture rule) and to its call's pcap file, and
	// whether the message trace selects it (the recorder keeps it).
	Select func(msg []byte) (hep, pcap, traced bool)
}

// Item is one message, or one read of a stream connection, to capture.
type Item struct {
	Packet
	// Conn names the stream connection a read came from ("" for a whole
	// message): the sending goroutine cuts its reads into messages.
	Conn  string
	Route *Route
	// Dir is "in" for a message read, "out" for one written.
	Dir string

	lost uint64 // the queue's drops when it was offered
}

// Counts are what the exporter did, since it started.
type Counts struct {
	// Sent is the HEP packets sent, Written the pcap records written.
	Sent, Written uint64
	// Dropped are the messages not captured, by reason: "queue" (the
	// queue was full), "send" (the collector could not be reached),
	// "pcap" (a file could not be written), "size" (too large).
	Dropped map[string]uint64
}

// Exporter captures messages on a goroutine of its own.
type Exporter struct {
	queue chan Item
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	log   *slog.Logger
	// recorder, if any, keeps every message for the console.
	recorder *Recorder

	lost, sent, written, sendFailed, pcapFailed, tooLarge atomic.Uint64
}

// NewExporter starts an exporter that hands every message to rec too, if
// not nil; Close stops it.
func NewExporter(log *slog.Logger, rec *Recorder) *Exporter {
	x := &Exporter{queue: make(chan Item, QueueSize), stop: make(chan struct{}), done: make(chan struct{}), log: log, recorder: rec}
	go x.run()
	return x
}

// Offer queues it, or drops it when the queue is full. It never blocks.
// The payload is copied.
func (x *Exporter) Offer(it Item) {
	it.Payload = append([]byte(nil), it.Payload...)
	it.lost = x.lost.Load()
	select {
	case x.queue <- it:
	default:
		x.lost.Add(1)
	}
}

// Counts returns what the exporter did so far.
func (x *Exporter) Counts() Counts {
	return Counts{
		Sent:    x.sent.Load(),
		Written: x.written.Load(),
		Dropped: map[string]uint64{
			"queue": x.lost.Load(),
			"send":  x.sendFailed.Load(),
			"pcap":  x.pcapFailed.Load(),
			"size":  x.tooLarge.Load(),
		},
	}
}

// Close captures what is queued, closes the files and the collector's
// connection, and stops.
func (x *Exporter) Close() {
	x.once.Do(func() { close(x.stop) })
	<-x.done
}

func (x *Exporter) run() {
	defer close(x.done)
	var (
		framer  Framer
		client  client
		pcaps   files
		lost    uint64
		buf     []byte
		logged  Counts
		lastErr error
	)
	defer client.close()
	defer pcaps.closeAll()
	tick := time.NewTicker(logEvery)
	defer tick.Stop()
	handle := func(it Item) {
		if it.lost != lost {
			framer.Reset() // reads of some connection may be missing
			lost = it.lost
		}
		msgs := [][]byte{it.Payload}
		if it.Conn != "" {
			msgs = framer.Frames(it.Conn, it.Payload)
		}
		for _, msg := range msgs {
			p := it.Packet
			p.Payload = msg
			hep, pcap, traced := it.Route.Select(msg)
			if x.recorder != nil {
				x.recorder.Record(&p, it.Dir, traced)
			}
			callID := ""
			if hep || pcap {
				callID = CallID(msg)
			}
			if hep && it.Route.Address != "" {
				var err error
				if buf, err = it.Route.HEP.Append(buf[:0], &p, callID); err != nil {
					x.tooLarge.Add(1)
				} else if err = client.send(it.Route.Address, buf, time.Now()); err != nil {
					x.sendFailed.Add(1)
					lastErr = err
				} else {
					x.sent.Add(1)
				}
			}
			if pcap && it.Route.PcapDir != "" && callID != "" {
				if err := pcaps.write(it.Route.PcapDir, callID, &p); err != nil {
					x.pcapFailed.Add(1)
					lastErr = err
				} else {
					x.written.Add(1)
				}
			}
		}
	}
	for {
		select {
		case it := <-x.queue:
			handle(it)
		case now := <-tick.C:
			pcaps.closeIdle(now)
			logged, lastErr = x.report(logged, lastErr)
		case <-x.stop:
			for {
				select {
				case it := <-x.queue:
					handle(it)
				default:
					return
				}
			}
		}
	}
}

// report logs the drops since the last report, if any, with the last
// error, and returns the counts it logged against.
func (x *Exporter) report(last Counts, lastErr error) (Counts, error) {
	now := x.Counts()
	attrs := []any{}
	for reason, n := range now.Dropped {
		if d := n - last.Dropped[reason]; d > 0 {
			attrs = append(attrs, reason, d)
		}
	}
	if len(attrs) > 0 && x.log != nil {
		if lastErr != nil {
			attrs = append(attrs, "error", lastErr.Error())
		}
		x.log.Warn("capture dropped messages", attrs...)
	}
	return now, nil
}
