package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// CaptureCounts are what the SIP capture did since start: HEP packets
// sent, pcap records written, and messages dropped by reason.
type CaptureCounts struct {
	Sent, Written uint64
	Dropped       map[string]uint64
}

var (
	captureSentDesc = prometheus.NewDesc("switchboard_capture_hep_sent_total",
		"SIP messages sent to the HEP collector.", nil, nil)
	captureWrittenDesc = prometheus.NewDesc("switchboard_capture_pcap_written_total",
		"SIP messages written to the pcap files of traced calls.", nil, nil)
	captureDroppedDesc = prometheus.NewDesc("switchboard_capture_dropped_total",
		"SIP messages not captured, by reason: queue (the capture queue was full), send (the collector could not be reached), pcap (a file could not be written), size (too large for HEP or pcap).",
		[]string{"reason"}, nil)
)

// captureCollector reads the capture's counts when scraped.
type captureCollector func() CaptureCounts

func (c captureCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- captureSentDesc
	ch <- captureWrittenDesc
	ch <- captureDroppedDesc
}

func (c captureCollector) Collect(ch chan<- prometheus.Metric) {
	n := c()
	ch <- prometheus.MustNewConstMetric(captureSentDesc, prometheus.CounterValue, float64(n.Sent))
	ch <- prometheus.MustNewConstMetric(captureWrittenDesc, prometheus.CounterValue, float64(n.Written))
	reasons := make([]string, 0, len(n.Dropped))
	for r := range n.Dropped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		ch <- prometheus.MustNewConstMetric(captureDroppedDesc, prometheus.CounterValue, float64(n.Dropped[r]), r)
	}
}
