// Package pipeline holds the parts every stage is written against: the Stage
// interfaces and their lifecycle, the registry that stages add themselves to,
// the per-message Context, the typed environment of `when` rules, and Build,
// which turns a decoded config into an immutable Pipeline.
package pipeline

import "net/netip"

// Verdict is what a request stage decided about the request in hand.
type Verdict int

const (
	// Continue passes the request to the next stage.
	Continue Verdict = iota
	// Replied means the stage answered the request with Context.Reply.
	Replied
	// Dropped means the request is discarded without an answer.
	Dropped
	// Forwarded means the request is to be relayed to Context.Targets
	// (or, with none, to its Route set or Request-URI).
	Forwarded
)

// String names the verdict as the trace and the metrics do.
func (v Verdict) String() string {
	switch v {
	case Continue:
		return "continue"
	case Replied:
		return "replied"
	case Dropped:
		return "dropped"
	case Forwarded:
		return "forwarded"
	}
	return "unknown"
}

// Stage is any value a registered constructor returns. A stage is a struct
// whose exported fields, tagged `toml:"key"`, are its config keys; Build
// decodes the stage's TOML table into it strictly (an unknown key is an
// error). A stage acts on requests, responses or both by implementing
// RequestStage, ResponseStage or both.
type Stage interface{}

// RequestStage is a stage that acts on requests.
type RequestStage interface {
	// ServeRequest acts on ctx.Request and says what happens next. A stage
	// that answers calls ctx.Reply and returns Replied; a stage that fails
	// returns an error, which the engine logs with the stage's name and
	// answers with 500.
	ServeRequest(ctx *Context) (Verdict, error)
}

// ResponseStage is a stage that acts on every response sent upstream: relayed
// ones, those made by stages, 2xx retransmissions, the 200 to a CANCEL and the
// 487 to a cancelled INVITE.
type ResponseStage interface {
	ServeResponse(ctx *ResponseContext) error
}

// Provisioner is implemented by stages that need resources or long-lived
// services. Provision runs once per build, after decoding; it may open
// files or borrow services from b.Services, and must leave nothing behind
// that Cleanup cannot release.
type Provisioner interface {
	Provision(b *BuildContext) error
}

// Validator is implemented by stages that check their decoded settings.
// Validate must be fast and have no side effects. Build calls it before
// Provision, so that Provision may rely on the settings it accepted; a
// stage never calls its own Validate.
type Validator interface {
	Validate() error
}

// CleanerUpper is implemented by stages that hold resources. Cleanup runs
// when a pipeline is retired or its build failed, even after a Provision that
// failed halfway.
type CleanerUpper interface {
	Cleanup() error
}

// Terminal is implemented by stages after which no request stage can run,
// such as forward. Build rejects a config with a terminal stage that is not
// the last request stage.
type Terminal interface {
	Terminal() bool
}

// ReadOnly is implemented by stages that change nothing a rule reads: not
// the message in hand (its Request-URI and headers; a response's status
// and headers) nor Source, Transport and AuthUser. A stage that only sets
// Targets, RecordRoute or Forward, makes a reply, or records what it saw
// is read only. After a stage that is not, the rule environment of the
// message is built again for the rules of the stages that follow; after
// one whose ReadOnly returns true, they read the fields already built.
type ReadOnly interface {
	ReadOnly() bool
}

// PacketStage is implemented by stages that screen traffic before it is
// parsed: the engine asks every PacketStage of the current pipeline about
// each datagram (and each TCP read) before sipgo parses it or creates a
// transaction for it, so that a flood costs no transaction state. Allow
// must be fast and safe for concurrent use; returning false drops the data
// unanswered.
type PacketStage interface {
	AllowPacket(src netip.AddrPort, transport string) bool
}
