package dialplan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// part is what a rule reads and rewrites: a part of the Request-URI, or
// the values of a header.
type part interface {
	// get returns the values; false when the request has none (no such
	// header).
	get(req *sip.Request) ([]string, bool)
	// set writes the values back, or returns why they cannot be.
	set(req *sip.Request, values []string) error
}

func partOf(r *Rule) part {
	if r.Header != "" {
		return headerPart{name: r.Header}
	}
	switch r.Part {
	case partHost:
		return hostPart{}
	case partPort:
		return portPart{}
	case partParams:
		return paramsPart{}
	}
	return userPart{}
}

// checkText refuses what would break the message or the URI: control
// characters and the characters listed.
func checkText(what, v, not string) error {
	for _, c := range v {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(not, c) {
			return fmt.Errorf("%s: %q: %q is not allowed", what, v, string(c))
		}
	}
	return nil
}

type userPart struct{}

func (userPart) get(req *sip.Request) ([]string, bool) { return []string{req.Recipient.User}, true }

func (userPart) set(req *sip.Request, v []string) error {
	if err := checkText("user", v[0], " @:<>"); err != nil {
		return err
	}
	req.Recipient.User = v[0]
	return nil
}

type hostPart struct{}

func (hostPart) get(req *sip.Request) ([]string, bool) { return []string{req.Recipient.Host}, true }

func (hostPart) set(req *sip.Request, v []string) error {
	if v[0] == "" {
		return fmt.Errorf("host: rewritten to nothing")
	}
	if err := checkText("host", v[0], " @;?<>/"); err != nil {
		return err
	}
	req.Recipient.Host = v[0]
	return nil
}

type portPart struct{}

func (portPart) get(req *sip.Request) ([]string, bool) {
	if req.Recipient.Port == 0 {
		return []string{""}, true
	}
	return []string{strconv.Itoa(req.Recipient.Port)}, true
}

func (portPart) set(req *sip.Request, v []string) error {
	if v[0] == "" {
		req.Recipient.Port = 0
		return nil
	}
	port, err := strconv.Atoi(v[0])
	if err != nil || port < 1 || port > 65535 {
		return fmt.Errorf("port: %q is not a port (1-65535, or empty for none)", v[0])
	}
	req.Recipient.Port = port
	return nil
}

// paramsPart is the URI's parameters as written: "transport=tcp;user=phone".
type paramsPart struct{}

func (paramsPart) get(req *sip.Request) ([]string, bool) {
	return []string{req.Recipient.UriParams.ToString(';')}, true
}

func (paramsPart) set(req *sip.Request, v []string) error {
	if err := checkText("params", v[0], " <>?"); err != nil {
		return err
	}
	params := sip.NewParams()
	for _, p := range strings.Split(v[0], ";") {
		if p == "" {
			continue
		}
		k, val, _ := strings.Cut(p, "=")
		if k == "" {
			return fmt.Errorf("params: %q: a parameter without a name", v[0])
		}
		params.Add(k, val)
	}
	req.Recipient.UriParams = params
	return nil
}

// headerPart is every value of one header, in order.
type headerPart struct{ name string }

func (h headerPart) get(req *sip.Request) ([]string, bool) {
	hs := req.GetHeaders(h.name)
	values := make([]string, len(hs))
	for i, hd := range hs {
		values[i] = hd.Value()
	}
	return values, len(hs) > 0
}

// set puts the values in place of the header's, where they stand. sipgo
// has no call to change a header's value, and keeps its shortcuts right
// only through RemoveHeader and AppendHeader; so every header is removed
// and the list appended again, as the parser builds a message.
func (h headerPart) set(req *sip.Request, values []string) error {
	for _, v := range values {
		if err := checkText(h.name, v, ""); err != nil {
			return err
		}
	}
	old := req.Headers()
	list := make([]sip.Header, len(old))
	i := 0
	for j, hd := range old {
		list[j] = hd
		if strings.EqualFold(hd.Name(), h.name) {
			list[j] = sip.NewHeader(hd.Name(), values[i])
			i++
		}
	}
	for _, hd := range list {
		req.RemoveHeader(hd.Name())
	}
	for _, hd := range list {
		req.AppendHeader(hd)
	}
	return nil
}
