package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// Forwarding is one user's call forwarding.
type Forwarding struct {
	AOR string `json:"aor"`
	location.Forwarding
}

// forwardPath is the request of `ctl forward AOR KIND=TARGET...`: the
// kinds go in the query as they are; a word without '=' is left for the
// proxy to refuse.
func forwardPath(args []string) string {
	q := url.Values{}
	q.Set("aor", args[0])
	for _, a := range args[1:] {
		k, v, _ := strings.Cut(a, "=")
		q.Set(k, v)
	}
	return "/admin/forwarding?" + q.Encode()
}

func showForwarding(w io.Writer, body []byte) error {
	var fs []Forwarding
	if err := json.Unmarshal(body, &fs); err != nil {
		return err
	}
	if len(fs) == 0 {
		_, err := fmt.Fprintln(w, "no call forwarding")
		return err
	}
	var rows [][]string
	for _, f := range fs {
		after := "-"
		if f.NoAnswerAfter > 0 {
			after = strconv.Itoa(f.NoAnswerAfter) + "s"
		}
		rows = append(rows, []string{f.AOR, dash(f.Unconditional), dash(f.Busy), dash(f.NoAnswer), after, dash(f.Unavailable)})
	}
	return table(w, "AOR\tUNCONDITIONAL\tBUSY\tNO-ANSWER\tAFTER\tUNAVAILABLE", rows)
}
