package fuzz

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"

	"github.com/mote-p2p/mote/wire/pb"
	"google.golang.org/protobuf/encoding/protowire"
)

// pbLimit maps a fuzzed byte to a Reader limit: 255 is NoLimit, so both
// bounded and unbounded reads get explored.
func pbLimit(v uint8) int {
	if v == 255 {
		return pb.NoLimit
	}
	return int(v)
}

// pbReadAll reads every field of data, stopping at the first error.
func pbReadAll(data []byte, maxFields, maxLen, depth int) ([]pb.Field, error) {
	r := pb.NewReader(data, maxFields, maxLen)
	r.AllowGroups(depth)
	var fields []pb.Field
	for {
		f, ok, err := r.Next()
		if err != nil || !ok {
			return fields, err
		}
		fields = append(fields, f)
	}
}

// pbSame reports whether two fields decoded alike.
func pbSame(a, b pb.Field) bool {
	return a.Num == b.Num && a.Type == b.Type && a.Value == b.Value && bytes.Equal(a.Bytes, b.Bytes)
}

// pbAppend re-encodes f canonically (minimal varints), groups verbatim.
func pbAppend(b []byte, f pb.Field) []byte {
	num, typ := protowire.Number(f.Num), protowire.Type(f.Type)
	switch f.Type {
	case pb.VarintType:
		return pb.AppendVarint(b, f.Num, f.Value)
	case pb.Fixed64Type:
		return protowire.AppendFixed64(protowire.AppendTag(b, num, typ), f.Value)
	case pb.Fixed32Type:
		return protowire.AppendFixed32(protowire.AppendTag(b, num, typ), uint32(f.Value))
	case pb.BytesType:
		return pb.AppendBytes(b, f.Num, f.Bytes)
	}
	b = protowire.AppendTag(b, num, protowire.StartGroupType)
	return protowire.AppendGroup(b, num, f.Bytes)
}

// within reports whether s is a subslice of data.
func within(s, data []byte) bool {
	if len(s) == 0 {
		return true
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= start && p+uintptr(len(s)) <= start+uintptr(len(data))
}

func FuzzPBReader(f *testing.F) {
	f.Add(uint8(255), uint8(255), uint8(0), identifyHex(identifyExample))
	f.Add(uint8(3), uint8(8), uint8(0), identifyHex(identifyExample))
	f.Add(uint8(255), uint8(255), uint8(0), identifyHex(identifyVectorKey))
	f.Add(uint8(255), uint8(255), uint8(0), []byte{})
	f.Add(uint8(0), uint8(0), uint8(0), []byte{0x08, 0x01})
	f.Add(uint8(255), uint8(255), uint8(2), identifyHex("389601"+"490102030405060708"+"5b08016201005c"+"0d01020304"))
	f.Add(uint8(255), uint8(255), uint8(3), identifyHex("0b0b0b0c0c0c"))
	f.Add(uint8(255), uint8(255), uint8(3), identifyHex("0b0b0b0b0c0c0c0c"))
	f.Add(uint8(255), uint8(1), uint8(0), identifyHex("0a0500"))
	f.Add(uint8(255), uint8(255), uint8(0), identifyHex("8a000178"+"f8ffffff0f00"))
	f.Add(uint8(255), uint8(255), uint8(0), identifyHex("0affffffffffffffff7f"))
	f.Add(uint8(255), uint8(255), uint8(0), identifyHex("08ffffffffffffffffff01"))
	f.Add(uint8(255), uint8(255), uint8(0), identifyHex("32ffffffffffffffffff01")) // a length of 2^64-1
	f.Fuzz(func(t *testing.T, maxFieldsB, maxLenB, depthB uint8, data []byte) {
		maxFields, maxLen, depth := pbLimit(maxFieldsB), pbLimit(maxLenB), int(depthB%8)
		full, errFull := pbReadAll(data, pb.NoLimit, pb.NoLimit, depth)
		if errFull != nil && (!errors.Is(errFull, pb.ErrMalformed) || errors.Is(errFull, pb.ErrTooLarge) || errors.Is(errFull, pb.ErrTooMany)) {
			t.Fatalf("unbounded read: %v wraps a limit error or not ErrMalformed", errFull)
		}
		groups := false
		for _, fl := range full {
			if !protowire.Number(fl.Num).IsValid() {
				t.Fatalf("field number %d returned", fl.Num)
			}
			if fl.Bytes != nil && (cap(fl.Bytes) != len(fl.Bytes) || !within(fl.Bytes, data)) {
				t.Fatalf("field %d: Bytes not a capped subslice of the input", fl.Num)
			}
			if (fl.Bytes == nil) != (fl.Type != pb.BytesType && fl.Type != pb.StartGroupType) {
				t.Fatalf("field %d of type %d: Bytes presence wrong", fl.Num, fl.Type)
			}
			groups = groups || fl.Type == pb.StartGroupType
			if fl.Type == pb.StartGroupType && depth == 0 {
				t.Fatal("group returned though groups are refused")
			}
		}

		// A bounded read returns a prefix of the unbounded one and stops
		// with the limit that fired.
		lim, errLim := pbReadAll(data, maxFields, maxLen, depth)
		if len(lim) > len(full) || len(lim) > maxFields {
			t.Fatalf("bounded read returned %d fields, unbounded %d, limit %d", len(lim), len(full), maxFields)
		}
		for i, fl := range lim {
			if !pbSame(fl, full[i]) {
				t.Fatalf("bounded field %d = %+v, unbounded %+v", i, fl, full[i])
			}
			if fl.Type == pb.BytesType && len(fl.Bytes) > maxLen {
				t.Fatalf("field %d of %d bytes returned, limit %d", fl.Num, len(fl.Bytes), maxLen)
			}
		}
		if errFull == nil && !groups {
			var want error
			n := len(full)
			for i, fl := range full {
				if i >= maxFields {
					want, n = pb.ErrTooMany, i
					break
				}
				if fl.Type == pb.BytesType && len(fl.Bytes) > maxLen {
					want, n = pb.ErrTooLarge, i
					break
				}
			}
			if want == nil && errLim != nil || want != nil && !errors.Is(errLim, want) || len(lim) != n {
				t.Fatalf("bounded read: %d fields and %v, want %d and %v", len(lim), errLim, n, want)
			}
		}
		if errFull != nil {
			return
		}

		// protowire, which the protobuf runtime (and so go-libp2p) parses
		// with, reads the same fields: we are never more lenient, and read
		// nothing differently.
		rest := data
		for i, fl := range full {
			num, typ, n := protowire.ConsumeField(rest)
			if n < 0 || num != protowire.Number(fl.Num) || typ != protowire.Type(fl.Type) {
				t.Fatalf("field %d: protowire reads %d/%d (%v), we read %+v", i, num, typ, protowire.ParseError(n), fl)
			}
			_, _, k := protowire.ConsumeTag(rest)
			val := rest[k:n]
			switch typ {
			case protowire.VarintType:
				v, _ := protowire.ConsumeVarint(val)
				if v != fl.Value {
					t.Fatalf("field %d: protowire reads %d, we read %d", i, v, fl.Value)
				}
			case protowire.Fixed64Type:
				if v, _ := protowire.ConsumeFixed64(val); v != fl.Value {
					t.Fatalf("field %d: protowire reads %d, we read %d", i, v, fl.Value)
				}
			case protowire.Fixed32Type:
				if v, _ := protowire.ConsumeFixed32(val); uint64(v) != fl.Value {
					t.Fatalf("field %d: protowire reads %d, we read %d", i, v, fl.Value)
				}
			case protowire.BytesType:
				v, _ := protowire.ConsumeBytes(val)
				if !bytes.Equal(v, fl.Bytes) {
					t.Fatalf("field %d: contents differ from protowire's", i)
				}
			case protowire.StartGroupType:
				v, _ := protowire.ConsumeGroup(num, val)
				if !bytes.Equal(v, fl.Bytes) {
					t.Fatalf("group %d: contents differ from protowire's", i)
				}
			}
			rest = rest[n:]
		}
		if len(rest) != 0 {
			t.Fatalf("%d bytes left after the fields", len(rest))
		}
		// A canonical re-encoding is no longer and reads back the same.
		var enc []byte
		for _, fl := range full {
			enc = pbAppend(enc, fl)
		}
		if len(enc) > len(data) {
			t.Fatalf("re-encoding is %d bytes, input %d", len(enc), len(data))
		}
		again, err := pbReadAll(enc, pb.NoLimit, pb.NoLimit, depth)
		if err != nil || len(again) != len(full) {
			t.Fatalf("re-read: %d fields, %v; want %d", len(again), err, len(full))
		}
		for i := range again {
			if !pbSame(again[i], full[i]) {
				t.Fatalf("re-read field %d = %+v, want %+v", i, again[i], full[i])
			}
		}
	})
}
