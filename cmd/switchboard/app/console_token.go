package app

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/console"
)

// tokenMask stands for the value of [http] token in the config the console
// shows: the admin token is a password, and neither the page nor its
// screenshots need it. Validate and Save put the file's value back in its
// place, so that a save never writes the mask.
const tokenMask = `"(hidden: the token in the file)"`

// tokenLine matches a token key and its value, a basic or a literal TOML
// string; group 2 is "http." when the key is dotted.
var tokenLine = regexp.MustCompile(`^(\s*(http\s*\.\s*)?token\s*=\s*)("(?:[^"\\]|\\.)*"|'[^']*')`)

// maskToken returns text with the value of [http] token (or of a
// top-level http.token) replaced by tokenMask, and that value as written.
func maskToken(text string) (masked, value string) {
	lines := strings.Split(text, "\n")
	table := ""
	for i, l := range lines {
		if t, _, _ := strings.Cut(strings.TrimSpace(l), "#"); strings.HasPrefix(t, "[") {
			table = strings.TrimSpace(strings.Trim(strings.TrimSpace(t), "[]"))
			if strings.HasPrefix(strings.TrimSpace(t), "[[") {
				table = "" // an array of tables holds no [http] key
			}
			continue
		}
		m := tokenLine.FindStringSubmatchIndex(l)
		if m == nil || (table == "http") == (m[4] >= 0) || (table != "http" && table != "") {
			continue
		}
		value = l[m[6]:m[7]]
		lines[i] = l[:m[6]] + tokenMask + l[m[7]:]
	}
	return strings.Join(lines, "\n"), value
}

// unmaskToken puts the token of file, the config file's text, in place of
// tokenMask in text. A mask where the file has no token is a mistake, at
// its line.
func unmaskToken(text, file string) (string, *console.ConfigError) {
	at := strings.Index(text, tokenMask)
	if at < 0 {
		return text, nil
	}
	_, value := maskToken(file)
	if value == "" {
		return "", &console.ConfigError{Line: strings.Count(text[:at], "\n") + 1,
			Message: fmt.Sprintf("%s stands for the token of the file, which has none: write the token", tokenMask)}
	}
	return strings.ReplaceAll(text, tokenMask, value), nil
}
