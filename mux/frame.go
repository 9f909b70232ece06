package mux

import (
	"encoding/binary"
	"fmt"
)

// This file is the yamux wire format: the 12-byte frame header, with no
// I/O and no session state.
//
//	offset size field
//	0      1    version (0)
//	1      1    type: 0 Data, 1 WindowUpdate, 2 Ping, 3 GoAway
//	2      2    flags: SYN 1, ACK 2, FIN 4, RST 8 (big-endian)
//	4      4    stream ID (0 for the session)
//	8      4    length: Data payload bytes that follow; WindowUpdate
//	            window delta (or error code with RST); Ping opaque
//	            value; GoAway error code

// HeaderSize is the length of a yamux frame header.
const HeaderSize = 12

// protoVersion is the only yamux version there is.
const protoVersion = 0

// FrameType is the type of a yamux frame.
type FrameType uint8

// Frame types.
const (
	// TypeData carries Length bytes of stream payload after the header.
	TypeData FrameType = 0
	// TypeWindowUpdate grants the peer Length more bytes of send window,
	// or carries an error code when it has the RST flag.
	TypeWindowUpdate FrameType = 1
	// TypePing asks (SYN) for or answers (ACK) a liveness check; Length
	// is an opaque value echoed back.
	TypePing FrameType = 2
	// TypeGoAway ends the session; Length is an error code.
	TypeGoAway FrameType = 3
)

func (t FrameType) String() string {
	switch t {
	case TypeData:
		return "Data"
	case TypeWindowUpdate:
		return "WindowUpdate"
	case TypePing:
		return "Ping"
	case TypeGoAway:
		return "GoAway"
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// Flags are the flags of a yamux frame; they may be combined.
type Flags uint16

// Frame flags. go-yamux sends all of them on WindowUpdate frames as well
// as on Data frames, so both must accept them.
const (
	// FlagSYN opens a stream (or marks a ping request).
	FlagSYN Flags = 1 << 0
	// FlagACK accepts a stream (or marks a ping answer).
	FlagACK Flags = 1 << 1
	// FlagFIN half-closes the sender's direction of a stream.
	FlagFIN Flags = 1 << 2
	// FlagRST abandons a stream in both directions.
	FlagRST Flags = 1 << 3
)

// GoAway codes defined by the yamux spec. go-libp2p also sends its
// connection error codes (0x1000–0x1008) in GoAway frames.
const (
	GoAwayNormal        uint32 = 0
	GoAwayProtocolError uint32 = 1
	GoAwayInternalError uint32 = 2
)

// ResetCodeLimit is the stream error code of go-libp2p meaning "resource
// limit exceeded"; we reset inbound streams beyond our limits with it.
const ResetCodeLimit uint32 = 0x1002

// Header is a decoded yamux frame header. The version is not kept: only
// version 0 exists, and ParseHeader rejects anything else.
type Header struct {
	Type     FrameType
	Flags    Flags
	StreamID uint32
	Length   uint32
}

func (h Header) String() string {
	return fmt.Sprintf("%v flags=%#x stream=%d length=%d", h.Type, uint16(h.Flags), h.StreamID, h.Length)
}

// Append appends the 12-byte encoding of h to b. It never fails, so a
// caller building a write buffer appends headers and payloads in place.
func (h Header) Append(b []byte) []byte {
	b = append(b, protoVersion, byte(h.Type))
	b = binary.BigEndian.AppendUint16(b, uint16(h.Flags))
	b = binary.BigEndian.AppendUint32(b, h.StreamID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// ParseHeader decodes the first HeaderSize bytes of b. A short buffer, a
// version other than 0 or an unknown frame type is an error wrapping
// ErrProtocol: yamux cannot skip a frame it does not understand, since
// only Data frames say how many bytes follow.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: short frame header (%d bytes)", ErrProtocol, len(b))
	}
	if b[0] != protoVersion {
		return Header{}, fmt.Errorf("%w: unsupported version %d", ErrProtocol, b[0])
	}
	h := Header{
		Type:     FrameType(b[1]),
		Flags:    Flags(binary.BigEndian.Uint16(b[2:4])),
		StreamID: binary.BigEndian.Uint32(b[4:8]),
		Length:   binary.BigEndian.Uint32(b[8:12]),
	}
	if h.Type > TypeGoAway {
		return Header{}, fmt.Errorf("%w: unknown frame type %d", ErrProtocol, b[1])
	}
	return h, nil
}
