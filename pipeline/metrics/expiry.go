package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var expiryDesc = prometheus.NewDesc("switchboard_tls_certificate_expiry_timestamp_seconds",
	"When each TLS certificate presented expires (Unix time), by its file: alert on it minus time().",
	[]string{"cert"}, nil)

// expiryCollector reads the certificates' expiry at each scrape, so that
// a certificate reloaded shows its new date at once.
type expiryCollector func() map[string]time.Time

func (c expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c expiryCollector) Collect(ch chan<- prometheus.Metric) {
	for file, t := range c() {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(t.Unix()), file)
	}
}
