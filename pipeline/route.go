package pipeline

// Route is what the dial plan decided about where a request goes, for the
// stages after it: the prefixes stage picks a destination set by the
// longest prefix of the number dialled, and the stage that sends requests
// to destination sets sends it there.
type Route struct {
	// Set names the destination set ([[set]]) the request goes to; "" when
	// no stage picked one.
	Set string
	// Prefix is the row of the prefix table that picked Set, for the trace.
	Prefix string
}

// SetValidator is implemented by stages that name destination sets in
// data of their own, such as the prefixes stage's table file: given the
// names of the sets the config declares, ValidateSets reports a set that
// is not one of them, with the file and line that names it. The stage
// keeps the names, and checks every reload of its file against them.
// Build calls it with the names of the config's [[set]] tables.
type SetValidator interface {
	ValidateSets(names []string) error
}
