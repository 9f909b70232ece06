package wire_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/wire"
)

// plainReader hides any io.ByteReader method of the wrapped reader, forcing
// the byte-at-a-time path that must not over-read.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// writeRecorder records every Write call separately, to check framing is
// written in a single call.
type writeRecorder struct{ writes [][]byte }

func (w *writeRecorder) Write(b []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(b))
	return len(b), nil
}

// stingyReader serves data then fails the test if anyone reads past it,
// which is how we prove a reader stops where it should.
type stingyReader struct {
	t    testing.TB
	data []byte
}

func (s *stingyReader) Read(b []byte) (int, error) {
	if len(s.data) == 0 {
		s.t.Error("read past the expected end of input")
		return 0, errors.New("read past end")
	}
	n := copy(b, s.data)
	s.data = s.data[n:]
	return n, nil
}

// stallingReader returns no data and no error forever.
type stallingReader struct{}

func (stallingReader) Read([]byte) (int, error) { return 0, nil }

func TestAppendLP(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, 300)
	tests := []struct {
		msg  []byte
		want []byte
	}{
		{nil, []byte{0x00}},
		{[]byte("abc"), []byte("\x03abc")},
		{long, append([]byte{0xac, 0x02}, long...)},
	}
	for _, tt := range tests {
		if got := wire.AppendLP(nil, tt.msg); !bytes.Equal(got, tt.want) {
			t.Errorf("AppendLP(%d bytes) = %x, want %x", len(tt.msg), got, tt.want)
		}
		var w writeRecorder
		if err := wire.WriteLP(&w, tt.msg); err != nil {
			t.Fatal(err)
		}
		if len(w.writes) != 1 || !bytes.Equal(w.writes[0], tt.want) {
			t.Errorf("WriteLP(%d bytes) made writes %x, want one write %x", len(tt.msg), w.writes, tt.want)
		}
	}
}

func TestReadLPSequence(t *testing.T) {
	msgs := [][]byte{[]byte("first"), {}, bytes.Repeat([]byte{7}, 200), []byte("last")}
	var stream []byte
	for _, m := range msgs {
		stream = wire.AppendLP(stream, m)
	}
	stream = append(stream, "tail"...)
	readers := map[string]func() io.Reader{
		"byte reader": func() io.Reader { return bytes.NewReader(stream) },
		"plain reader": func() io.Reader {
			return plainReader{bytes.NewReader(stream)}
		},
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			r := mk()
			for i, want := range msgs {
				got, err := wire.ReadLP(r, 200)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("message %d: got (%q, %v), want %q", i, got, err, want)
				}
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != "tail" {
				t.Fatalf("left %q unread, want %q", rest, "tail")
			}
		})
	}
}

func TestReadLPErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		limit int
		want  error
	}{
		{"clean EOF", nil, 10, io.EOF},
		{"EOF in prefix", []byte{0x80}, 10, io.ErrUnexpectedEOF},
		{"EOF in body", []byte("\x05ab"), 10, io.ErrUnexpectedEOF},
		{"EOF before body", []byte{0x05}, 10, io.ErrUnexpectedEOF},
		{"over limit", []byte("\x0bhello world"), 10, wire.ErrMessageTooLarge},
		{"negative limit", []byte("\x01a"), -1, wire.ErrMessageTooLarge},
		{"non-minimal prefix", []byte{0x81, 0x00, 'a'}, 10, wire.ErrVarintNotMinimal},
		{"overflowing prefix", bytes.Repeat([]byte{0xff}, 10), 10, wire.ErrVarintOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tt.in), plainReader{bytes.NewReader(tt.in)}} {
				_, err := wire.ReadLP(r, tt.limit)
				if !errors.Is(err, tt.want) {
					t.Errorf("%T: err = %v, want %v", r, err, tt.want)
				}
				if tt.want == io.EOF && err != io.EOF {
					t.Errorf("%T: clean EOF must be io.EOF itself, got %v", r, err)
				}
			}
		})
	}
}

func TestReadLPLimitBoundary(t *testing.T) {
	msg := bytes.Repeat([]byte{'a'}, 10)
	got, err := wire.ReadLP(bytes.NewReader(wire.AppendLP(nil, msg)), 10)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("message at the limit: got (%q, %v)", got, err)
	}
	_, err = wire.ReadLP(bytes.NewReader(wire.AppendLP(nil, msg)), 9)
	if !errors.Is(err, wire.ErrMessageTooLarge) {
		t.Fatalf("message over the limit: err = %v", err)
	}
	for _, want := range []string{"10 bytes", "9-byte limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestReadLPHugeLengthNoAlloc(t *testing.T) {
	prefix := wire.AppendUvarint(nil, 1<<62)
	// The reader fails the test if ReadLP tries to read the body.
	_, err := wire.ReadLP(&stingyReader{t: t, data: prefix}, 1<<20)
	if !errors.Is(err, wire.ErrMessageTooLarge) {
		t.Fatalf("err = %v, want ErrMessageTooLarge", err)
	}
	r := bytes.NewReader(prefix)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(prefix)
		_, _ = wire.ReadLP(r, 1<<20)
	})
	// Only the error value is allocated; a body buffer would be fatal anyway.
	if allocs > 5 {
		t.Fatalf("rejecting a huge length made %.0f allocations", allocs)
	}
}

func TestReadLPLargeBody(t *testing.T) {
	msg := make([]byte, 300<<10)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	for _, r := range []io.Reader{bytes.NewReader(wire.AppendLP(nil, msg)), plainReader{bytes.NewReader(wire.AppendLP(nil, msg))}} {
		got, err := wire.ReadLP(r, len(msg))
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%T: large body did not round-trip: %v", r, err)
		}
	}
}

func TestReadLPAllocatesAsBytesArrive(t *testing.T) {
	// The peer declares 1 GiB (within the limit) but sends only 10 bytes.
	in := append(wire.AppendUvarint(nil, 1<<30), make([]byte, 10)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := wire.ReadLP(bytes.NewReader(in), 1<<30+1) // fits a 32-bit int
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes for a 10-byte body", grew)
	}
}

func TestReadLPStallingReader(t *testing.T) {
	if _, err := wire.ReadLP(stallingReader{}, 10); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

func TestReadLPInto(t *testing.T) {
	buf := make([]byte, 4)
	got, err := wire.ReadLPInto(bytes.NewReader([]byte("\x04abcd")), buf)
	if err != nil || string(got) != "abcd" || &got[0] != &buf[0] {
		t.Fatalf("got (%q, %v), want abcd in the caller's buffer", got, err)
	}
	_, err = wire.ReadLPInto(&stingyReader{t: t, data: []byte{0x05}}, buf)
	if !errors.Is(err, wire.ErrMessageTooLarge) {
		t.Fatalf("over len(buf): err = %v, want ErrMessageTooLarge", err)
	}
	if _, err := wire.ReadLPInto(bytes.NewReader(nil), buf); err != io.EOF {
		t.Fatalf("empty input: err = %v, want io.EOF", err)
	}
}

func BenchmarkReadLP(b *testing.B) {
	b.ReportAllocs()
	in := wire.AppendLP(nil, bytes.Repeat([]byte{1}, 64))
	r := bytes.NewReader(in)
	for range b.N {
		r.Reset(in)
		if _, err := wire.ReadLP(r, 1024); err != nil {
			b.Fatal(err)
		}
	}
}
