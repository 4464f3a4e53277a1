package metrics

import "github.com/prometheus/client_golang/prometheus"

// Destination is what the metrics show of one address of a destination
// of a destination set.
type Destination struct {
	Set, URI, Address string
	// Up is true when requests may go to the address: it passes its
	// checks, is not out for a Retry-After, and the destination is not
	// drained.
	Up         bool
	Drained    bool
	InProgress int64
}

var (
	destinationUpDesc = prometheus.NewDesc("switchboard_destination_up",
		"1 when requests may go to the address of a destination of a set, 0 when it is down, out for a Retry-After or drained.",
		[]string{"set", "uri", "address"}, nil)
	destinationDrainedDesc = prometheus.NewDesc("switchboard_destination_drained",
		"1 when an operator drained the destination through the admin API.",
		[]string{"set", "uri"}, nil)
	destinationInProgressDesc = prometheus.NewDesc("switchboard_destination_requests_in_progress",
		"Requests sent to the destination that have no final answer yet.",
		[]string{"set", "uri"}, nil)
)

// destinationCollector reads the destinations when scraped.
type destinationCollector func() []Destination

func (c destinationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- destinationUpDesc
	ch <- destinationDrainedDesc
	ch <- destinationInProgressDesc
}

func (c destinationCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[[2]string]bool{}
	for _, d := range c() {
		ch <- prometheus.MustNewConstMetric(destinationUpDesc, prometheus.GaugeValue, bit(d.Up), d.Set, d.URI, d.Address)
		key := [2]string{d.Set, d.URI}
		if seen[key] {
			continue
		}
		seen[key] = true
		ch <- prometheus.MustNewConstMetric(destinationDrainedDesc, prometheus.GaugeValue, bit(d.Drained), d.Set, d.URI)
		ch <- prometheus.MustNewConstMetric(destinationInProgressDesc, prometheus.GaugeValue, float64(d.InProgress), d.Set, d.URI)
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
