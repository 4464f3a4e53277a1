package app

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/keepalive"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// TestUnregisterStopsPings: a binding behind NAT that `ctl unregister`
// removes is pinged no more; the other one of its AOR still is.
func TestUnregisterStopsPings(t *testing.T) {
	store := location.NewMemory()
	pinger := keepalive.New(func() location.Store { return store }, func(keepalive.Ping) error { return nil }, func(string) {}, slog.New(slog.DiscardHandler))
	o := &operations{svc: &pipeline.Services{Location: store, Keepalive: pinger}}
	now := time.Now()
	contacts := []string{"sip:bob@192.0.2.1:5060", "sip:bob@192.0.2.2:5060"}
	var bindings []location.Binding
	var watch []keepalive.Flow
	for _, c := range contacts {
		bindings = append(bindings, location.Binding{Contact: c, Expires: now.Add(time.Hour), CallID: "c", CSeq: 1, NAT: true})
		watch = append(watch, keepalive.Flow{Contact: c, CallID: "c", CSeq: 1, Received: netip.MustParseAddrPort("192.0.2.9:4000"), Expires: now.Add(time.Hour), Interval: time.Minute, Timeout: time.Hour})
	}
	if _, err := store.Update("bob", now, func([]location.Binding) ([]location.Binding, error) { return bindings, nil }); err != nil {
		t.Fatal(err)
	}
	pinger.Sync("bob", bindings, watch, now)

	if _, err := o.unregister("bob", contacts[0]); err != nil {
		t.Fatal(err)
	}
	pinged, _ := pinger.Flows()
	if len(pinged) != 1 || pinged[0].Contact != contacts[1] {
		t.Errorf("pinged after unregistering %s: %+v, want only %s", contacts[0], pinged, contacts[1])
	}
	if _, err := o.unregister("bob", ""); err != nil {
		t.Fatal(err)
	}
	if pinged, _ := pinger.Flows(); len(pinged) != 0 {
		t.Errorf("pinged after unregistering bob: %+v", pinged)
	}
}
