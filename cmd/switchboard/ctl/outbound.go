package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// showOutbound prints the outbound registrations, one a row.
func showOutbound(w io.Writer, body []byte) error {
	var regs []pipeline.RegistrationInfo
	if err := json.Unmarshal(body, &regs); err != nil {
		return err
	}
	if len(regs) == 0 {
		_, err := fmt.Fprintln(w, "no outbound registrations")
		return err
	}
	var rows [][]string
	for _, r := range regs {
		expires := "-"
		if !r.Expires.IsZero() {
			expires = time.Until(r.Expires).Round(time.Second).String()
		}
		rows = append(rows, []string{r.AOR, r.Registrar, r.State, expires, r.LastError})
	}
	return table(w, "AOR\tREGISTRAR\tSTATE\tEXPIRES-IN\tLAST-ERROR", rows)
}
