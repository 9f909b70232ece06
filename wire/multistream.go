package wire

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ProtocolID is the multistream-select 1.0 header. Both sides send it as
// their first message and must receive it as the peer's first message.
const ProtocolID = "/multistream/1.0.0"

// MaxProtocolLen is the largest multistream message accepted, counting the
// trailing newline. go-multistream rejects longer messages, so protocol IDs
// are limited to MaxProtocolLen-1 bytes; it also bounds what a peer can make
// us allocate per message.
const MaxProtocolLen = 1024

// MaxProposals is how many proposals (including "ls") a listener answers in
// one negotiation before giving up, so a peer cannot keep a stream in
// negotiation forever by proposing unknown protocols.
const MaxProposals = 32

// Reserved multistream messages that are never protocol IDs.
const (
	msgNA = "na"
	msgLS = "ls"
)

// ErrNotSupported is matched (via errors.Is) by every error saying that the
// peer rejected all of our proposals, so callers can fall back or give up
// without inspecting the concrete error.
var ErrNotSupported = errors.New("protocol not supported")

// ErrProtocolViolation is wrapped by errors about a peer breaking the
// multistream rules (missing header, malformed or oversized message,
// unexpected answer, too many proposals). Such a stream must be reset.
var ErrProtocolViolation = errors.New("multistream: protocol violation")

// NotSupportedError reports that the peer answered "na" to every proposal.
// It lists what was proposed so logs show what the peer lacks.
type NotSupportedError struct {
	// Protocols are the rejected proposals, in the order they were sent.
	Protocols []string
}

// Error names the protocols the peer refused.
func (e *NotSupportedError) Error() string {
	if len(e.Protocols) == 0 {
		return "multistream: peer does not support the proposed protocol"
	}
	return "multistream: peer does not support " + strings.Join(e.Protocols, ", ")
}

// Is makes errors.Is(err, ErrNotSupported) true for a NotSupportedError.
func (e *NotSupportedError) Is(target error) bool {
	return target == ErrNotSupported
}

// headerMsg is the encoded header, built once because every negotiation
// sends it. Writers must not modify what they are given, so sharing is safe.
var headerMsg = AppendMessage(nil, ProtocolID)

// AppendMessage appends line as one multistream message:
// uvarint(len(line)+1) ‖ line ‖ '\n'.
func AppendMessage(b []byte, line string) []byte {
	b = AppendUvarint(b, uint64(len(line))+1)
	b = append(b, line...)
	return append(b, '\n')
}

// ReadMessage reads exactly one multistream message from r and returns it
// without its trailing newline. It never reads past the message, allocates
// at most MaxProtocolLen bytes, and returns io.EOF only if r ends cleanly
// before the message starts.
func ReadMessage(r io.Reader) (string, error) {
	b, err := readMessage(r)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// readMessage is ReadMessage returning the bytes, so that comparisons with
// expected strings need no extra allocation.
func readMessage(r io.Reader) ([]byte, error) {
	b, err := ReadLP(r, MaxProtocolLen)
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case isFramingViolation(err):
		return nil, fmt.Errorf("%w: %w", ErrProtocolViolation, err)
	case err != nil:
		return nil, err
	case len(b) == 0:
		return nil, fmt.Errorf("%w: empty message", ErrProtocolViolation)
	case b[len(b)-1] != '\n':
		return nil, fmt.Errorf("%w: message %s lacks the trailing newline", ErrProtocolViolation, excerpt(b))
	}
	return b[:len(b)-1], nil
}

// isFramingViolation tells a malformed length prefix (the peer's fault) from
// an I/O failure (the connection's fault).
func isFramingViolation(err error) bool {
	return errors.Is(err, ErrMessageTooLarge) ||
		errors.Is(err, ErrVarintOverflow) ||
		errors.Is(err, ErrVarintNotMinimal)
}

// excerpt quotes at most 64 bytes of peer data for error messages, keeping
// logs readable whatever the peer sent.
func excerpt(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return fmt.Sprintf("%q...", b[:limit])
	}
	return fmt.Sprintf("%q", b)
}

// checkProtocolID rejects protocol IDs that cannot be sent as a proposal:
// empty, too long for the peer to accept, containing a newline, or one of
// the reserved words "na" and "ls" (whose echo would be ambiguous).
func checkProtocolID(p string) error {
	switch {
	case p == "":
		return errors.New("multistream: empty protocol ID")
	case len(p) >= MaxProtocolLen:
		return fmt.Errorf("multistream: protocol ID of %d bytes exceeds the %d-byte limit", len(p), MaxProtocolLen-1)
	case strings.Contains(p, "\n"):
		return fmt.Errorf("multistream: protocol ID %q contains a newline", p)
	case p == msgNA || p == msgLS:
		return fmt.Errorf("multistream: %q is a reserved message, not a protocol ID", p)
	}
	return nil
}

// readHeader reads the peer's first message and checks that it is the
// multistream header, as the spec requires before anything else.
func readHeader(r io.Reader) error {
	b, err := readMessage(r)
	if err != nil {
		return fmt.Errorf("multistream: reading header: %w", err)
	}
	if string(b) != ProtocolID {
		return fmt.Errorf("%w: expected header %q, got %s", ErrProtocolViolation, ProtocolID, excerpt(b))
	}
	return nil
}

// AppendSelect appends the header and a proposal for proto: what a dialer
// sends first. An optimistic dialer that knows the peer supports proto may
// append its first application bytes and write them all at once, then call
// ReadSelectResponse before reading application data. The transport must
// buffer that write (sockets and muxed streams do; net.Pipe does not),
// because the listener writes its header before reading.
func AppendSelect(b []byte, proto string) []byte {
	b = append(b, headerMsg...)
	return AppendMessage(b, proto)
}

// ReadSelectResponse reads the listener's header and its answer to proto.
// It returns nil when the listener echoed proto, a *NotSupportedError when
// it answered "na", and an error wrapping ErrProtocolViolation for anything
// else. It reads nothing beyond the answer, so application data may follow.
func ReadSelectResponse(r io.Reader, proto string) error {
	if err := checkProtocolID(proto); err != nil {
		return err
	}
	if err := readHeader(r); err != nil {
		return err
	}
	return readAnswer(r, proto)
}

// readAnswer reads the listener's answer to one proposal.
func readAnswer(r io.Reader, proto string) error {
	b, err := readMessage(r)
	if err != nil {
		return fmt.Errorf("multistream: reading answer to %q: %w", proto, err)
	}
	switch string(b) {
	case proto:
		return nil
	case msgNA:
		return &NotSupportedError{Protocols: []string{proto}}
	}
	return fmt.Errorf("%w: answer %s to proposal %q is neither its echo nor %q",
		ErrProtocolViolation, excerpt(b), proto, msgNA)
}

// SelectOne negotiates proto as the dialer: it writes the header and the
// proposal in one Write and reads the header and the answer. Like every
// dialer here it needs a transport that buffers small writes (sockets and
// muxed streams do; net.Pipe does not), since the listener writes its
// header before reading. Callers should set a deadline on rw: a peer that
// never answers would otherwise block SelectOne forever.
func SelectOne(rw io.ReadWriter, proto string) error {
	if err := checkProtocolID(proto); err != nil {
		return err
	}
	if _, err := rw.Write(AppendSelect(nil, proto)); err != nil {
		return fmt.Errorf("multistream: writing proposal %q: %w", proto, err)
	}
	return ReadSelectResponse(rw, proto)
}

// SelectOneOf negotiates the first protocol of protos the listener accepts.
// The header and the first proposal go out together; after each "na" the
// next proposal is sent alone. Fallbacks are never pipelined, because a
// listener that accepts one proposal treats whatever follows as application
// data. When every proposal is refused it returns a *NotSupportedError
// listing them all.
func SelectOneOf(rw io.ReadWriter, protos []string) (string, error) {
	if len(protos) == 0 {
		return "", errors.New("multistream: no protocols to propose")
	}
	for _, p := range protos {
		if err := checkProtocolID(p); err != nil {
			return "", err
		}
	}
	err := SelectOne(rw, protos[0])
	if err == nil {
		return protos[0], nil
	}
	if !errors.Is(err, ErrNotSupported) {
		return "", err
	}
	var buf []byte
	for _, p := range protos[1:] {
		buf = AppendMessage(buf[:0], p)
		if _, err := rw.Write(buf); err != nil {
			return "", fmt.Errorf("multistream: writing proposal %q: %w", p, err)
		}
		err := readAnswer(rw, p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, ErrNotSupported) {
			return "", err
		}
	}
	return "", &NotSupportedError{Protocols: slices.Clone(protos)}
}

// Negotiate runs the listener side. It writes the header at once (before
// reading, since some dialers wait for it), requires the dialer's header as
// the first message, then answers proposals one at a time: it echoes and
// returns the first one match accepts, answers "na" to the others, and
// answers "ls" with protocols (or "na" when protocols is empty). A nil match
// accepts exactly the members of protocols. At most MaxProposals proposals
// are answered. Nothing after the accepted proposal is read: those bytes
// belong to the protocol handler. Callers should set a deadline on rw.
func Negotiate(rw io.ReadWriter, protocols []string, match func(string) bool) (string, error) {
	if match == nil {
		match = func(p string) bool { return slices.Contains(protocols, p) }
	}
	if _, err := rw.Write(headerMsg); err != nil {
		return "", fmt.Errorf("multistream: writing header: %w", err)
	}
	if err := readHeader(rw); err != nil {
		return "", err
	}
	var out []byte
	for range MaxProposals {
		b, err := readMessage(rw)
		if err != nil {
			return "", fmt.Errorf("multistream: reading proposal: %w", err)
		}
		accepted := acceptable(b, match)
		out = answer(out[:0], b, accepted, protocols)
		if _, err := rw.Write(out); err != nil {
			return "", fmt.Errorf("multistream: writing answer to %s: %w", excerpt(b), err)
		}
		if accepted {
			return string(b), nil
		}
	}
	return "", fmt.Errorf("%w: peer made more than %d proposals", ErrProtocolViolation, MaxProposals)
}

// acceptable reports whether proposal b is a well-formed protocol ID that
// match accepts; malformed or reserved lines are refused whatever match says.
func acceptable(b []byte, match func(string) bool) bool {
	p := string(b)
	return checkProtocolID(p) == nil && match(p)
}

// answer appends the listener's reply to proposal b: its echo when accepted,
// the protocol list for "ls" when there is one, and "na" otherwise.
func answer(out, b []byte, accepted bool, protocols []string) []byte {
	switch {
	case accepted:
		out = AppendUvarint(out, uint64(len(b))+1)
		out = append(out, b...)
		return append(out, '\n')
	case string(b) == msgLS && len(protocols) > 0:
		return appendLsResponse(out, protocols)
	}
	return AppendMessage(out, msgNA)
}

// appendLsResponse appends the spec's answer to "ls": one message whose body
// is each protocol as an embedded message, then a final newline. Protocols
// that would push it past MaxProtocolLen are left out, since a conforming
// peer rejects longer messages.
func appendLsResponse(b []byte, protocols []string) []byte {
	var body []byte
	for _, p := range protocols {
		size := UvarintLen(uint64(len(p))+1) + len(p) + 1
		if len(body)+size+1 > MaxProtocolLen {
			continue
		}
		body = AppendMessage(body, p)
	}
	body = append(body, '\n')
	b = AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}
