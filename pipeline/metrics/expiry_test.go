package metrics

import (
	"testing"
	"time"
)

func TestCertificateExpiry(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	expiry := map[string]time.Time{"/etc/sb/cert.pem": at}
	m := New(Gauges{CertificateExpiry: func() map[string]time.Time { return expiry }})
	for i, want := range []time.Time{at, at.Add(90 * 24 * time.Hour)} {
		expiry = map[string]time.Time{"/etc/sb/cert.pem": want}
		families, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range families {
			if f.GetName() != "switchboard_tls_certificate_expiry_timestamp_seconds" {
				continue
			}
			for _, mt := range f.GetMetric() {
				found = true
				if got := mt.GetGauge().GetValue(); got != float64(want.Unix()) || mt.GetLabel()[0].GetValue() != "/etc/sb/cert.pem" {
					t.Errorf("test %d: %v = %v, want %v", i, mt.GetLabel(), got, want.Unix())
				}
			}
		}
		if !found {
			t.Errorf("test %d: no expiry metric", i)
		}
	}
}
