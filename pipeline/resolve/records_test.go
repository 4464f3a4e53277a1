package resolve

import (
	"math/rand/v2"
	"testing"

	"github.com/miekg/dns"
)

func srvRec(prio, weight uint16, target string) *dns.SRV {
	return &dns.SRV{Priority: prio, Weight: weight, Port: 5060, Target: target}
}

func TestOrderSRVPriority(t *testing.T) {
	recs := []*dns.SRV{srvRec(20, 0, "c."), srvRec(10, 5, "a."), srvRec(30, 1, "d."), srvRec(10, 5, "b.")}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100; i++ {
		got := orderSRV(recs, rng.IntN)
		if len(got) != 4 {
			t.Fatalf("draw %d: %d records, want 4", i, len(got))
		}
		first := map[string]bool{got[0].Target: true, got[1].Target: true}
		if !first["a."] || !first["b."] || got[2].Target != "c." || got[3].Target != "d." {
			t.Fatalf("draw %d: order %s %s %s %s, want a and b, then c, then d", i, got[0].Target, got[1].Target, got[2].Target, got[3].Target)
		}
	}
}

// TestOrderSRVWeights draws many orders and checks that each record comes
// first in proportion to its weight, and that weight 0 comes last.
func TestOrderSRVWeights(t *testing.T) {
	tests := []struct {
		weights []uint16
		want    []float64 // share of draws in which each record comes first
	}{
		{[]uint16{1, 1}, []float64{0.5, 0.5}},
		{[]uint16{10, 30, 60}, []float64{0.1, 0.3, 0.6}},
		{[]uint16{3, 0, 1}, []float64{0.75, 0, 0.25}},
		{[]uint16{0, 0}, []float64{0.5, 0.5}},
	}
	const draws = 20000
	for i, tc := range tests {
		var recs []*dns.SRV
		for j, w := range tc.weights {
			recs = append(recs, srvRec(1, w, string(rune('a'+j))))
		}
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		firsts := make([]int, len(recs))
		for range draws {
			got := orderSRV(recs, rng.IntN)
			firsts[got[0].Target[0]-'a']++
			for k, w := range tc.weights {
				if w == 0 && len(tc.weights) > 2 && got[len(got)-1].Target != recs[k].Target {
					t.Fatalf("test %d: the record of weight 0 is not last: %s", i, got[len(got)-1].Target)
				}
			}
		}
		for j, want := range tc.want {
			share := float64(firsts[j]) / draws
			if share < want-0.02 || share > want+0.02 {
				t.Errorf("test %d: record %d (weight %d) first in %.3f of draws, want %.2f ± 0.02", i, j, tc.weights[j], share, want)
			}
		}
	}
}
