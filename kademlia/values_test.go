package kademlia

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// valEpoch is the first time the value tests give a store.
var valEpoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// valAt returns valEpoch plus d.
func valAt(d time.Duration) time.Time { return valEpoch.Add(d) }

func TestValueConfigDefaults(t *testing.T) {
	want := ValueConfig{MaxAge: 48 * time.Hour, MaxRecords: 4096, MaxBytes: 8 << 20}
	tests := []struct {
		name string
		cfg  ValueConfig
		want ValueConfig
	}{
		{"zero", ValueConfig{}, want},
		{"negative", ValueConfig{MaxAge: -1, MaxRecords: -1, MaxBytes: -1}, want},
		{"set", ValueConfig{MaxAge: time.Hour, MaxRecords: 3, MaxBytes: 100}, ValueConfig{MaxAge: time.Hour, MaxRecords: 3, MaxBytes: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewValueStore(tt.cfg).cfg; got != tt.want {
				t.Errorf("config = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// valBetter is a comparison for Put that records its calls.
type valBetter struct {
	win   bool
	err   error
	calls []string // the stored values it was shown
}

func (b *valBetter) better(stored []byte) (bool, error) {
	b.calls = append(b.calls, string(stored))
	return b.win, b.err
}

func TestValueStorePut(t *testing.T) {
	const maxAge = 10 * time.Hour
	errSelect := errors.New("select failed")
	tests := []struct {
		name string
		// stored, if not "", is put at 0 first.
		stored string
		at     time.Duration // of the second Put
		better *valBetter    // nil: a nil better
		// wantErr is the second Put's error; wantCalls what better
		// was shown; want the value Get returns after, and wantAt
		// when it was received.
		wantErr   error
		wantCalls []string
		want      string
		wantAt    time.Duration
	}{
		{name: "nothing stored", at: time.Hour, better: &valBetter{win: false}, want: "new", wantAt: time.Hour},
		{name: "new wins", stored: "old", at: time.Hour, better: &valBetter{win: true}, wantCalls: []string{"old"}, want: "new", wantAt: time.Hour},
		{name: "stored wins", stored: "old", at: time.Hour, better: &valBetter{win: false}, wantErr: ErrNotBetter, wantCalls: []string{"old"}, want: "old"},
		{name: "comparison fails", stored: "old", at: time.Hour, better: &valBetter{err: errSelect}, wantErr: errSelect, wantCalls: []string{"old"}, want: "old"},
		{name: "nil better", stored: "old", at: time.Hour, want: "new", wantAt: time.Hour},
		{name: "stored is MaxAge old", stored: "old", at: maxAge, better: &valBetter{win: false}, wantErr: ErrNotBetter, wantCalls: []string{"old"}, want: "old"},
		{name: "stored expired", stored: "old", at: maxAge + 1, better: &valBetter{win: false}, want: "new", wantAt: maxAge + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewValueStore(ValueConfig{MaxAge: maxAge})
			const key = "/pk/k"
			if tt.stored != "" {
				if err := s.Put(key, []byte(tt.stored), nil, valAt(0)); err != nil {
					t.Fatal(err)
				}
			}
			var better func([]byte) (bool, error)
			if tt.better != nil {
				better = tt.better.better
			}
			err := s.Put(key, []byte("new"), better, valAt(tt.at))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Put = %v, want %v", err, tt.wantErr)
			}
			if tt.better != nil && fmt.Sprint(tt.better.calls) != fmt.Sprint(tt.wantCalls) {
				t.Errorf("better was shown %q, want %q", tt.better.calls, tt.wantCalls)
			}
			v, received, ok := s.Get(key, valAt(tt.at))
			if !ok || string(v) != tt.want || !received.Equal(valAt(tt.wantAt)) {
				t.Errorf("Get = %q, %v, %v; want %q, %v", v, received, ok, tt.want, valAt(tt.wantAt))
			}
			if want := len(key) + len(tt.want); s.Len() != 1 || s.Bytes() != want {
				t.Errorf("store holds %d records, %d bytes; want 1, %d", s.Len(), s.Bytes(), want)
			}
		})
	}
}

func TestValueStoreGet(t *testing.T) {
	const maxAge = 10 * time.Hour
	tests := []struct {
		name   string
		at     time.Duration
		key    string
		wantOK bool
	}{
		{"fresh", 0, "/pk/a", true},
		{"MaxAge old", maxAge, "/pk/a", true},
		{"expired", maxAge + 1, "/pk/a", false},
		{"unknown key", 0, "/pk/b", false},
		{"empty key", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewValueStore(ValueConfig{MaxAge: maxAge})
			if err := s.Put("/pk/a", []byte("v"), nil, valAt(0)); err != nil {
				t.Fatal(err)
			}
			v, received, ok := s.Get(tt.key, valAt(tt.at))
			if ok != tt.wantOK {
				t.Fatalf("Get ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				if v != nil || !received.IsZero() {
					t.Errorf("Get returned %q, %v with ok false", v, received)
				}
				if tt.key == "/pk/a" && (s.Len() != 0 || s.Bytes() != 0) {
					t.Errorf("the expired record was kept: %d records, %d bytes", s.Len(), s.Bytes())
				}
				return
			}
			if string(v) != "v" || !received.Equal(valAt(0)) {
				t.Errorf("Get = %q, %v", v, received)
			}
		})
	}
}

func TestValueStoreCopies(t *testing.T) {
	s := NewValueStore(ValueConfig{})
	value := []byte("value")
	if err := s.Put("/pk/a", value, nil, valEpoch); err != nil {
		t.Fatal(err)
	}
	value[0] = 'X'
	got, _, _ := s.Get("/pk/a", valEpoch)
	if string(got) != "value" {
		t.Fatalf("after the caller changed the value it put, the store has %q", got)
	}
	got[0] = 'Y'
	if got, _, _ := s.Get("/pk/a", valEpoch); string(got) != "value" {
		t.Errorf("after the caller changed the value it got, the store has %q", got)
	}
}

func TestValueStoreFull(t *testing.T) {
	const maxAge = time.Hour
	type put struct {
		at      time.Duration
		key     string
		value   string
		wantErr error
	}
	tests := []struct {
		name      string
		cfg       ValueConfig
		puts      []put
		wantKeys  string // held after, sorted, with values: "a=1 b=2"
		wantBytes int
	}{
		{
			name: "records",
			cfg:  ValueConfig{MaxRecords: 2},
			puts: []put{
				{0, "a", "1", nil}, {0, "b", "2", nil},
				{0, "c", "3", ErrStoreFull},
				{0, "a", "4", nil}, // replacing takes no new record
			},
			wantKeys: "a=4 b=2", wantBytes: 4,
		},
		{
			name: "bytes",
			cfg:  ValueConfig{MaxBytes: 10},
			puts: []put{
				{0, "a", "1234", nil}, {0, "b", "123", nil}, // 9 bytes
				{0, "c", "1", ErrStoreFull},
				{0, "b", "1234", nil},           // one more byte: 10
				{0, "b", "12345", ErrStoreFull}, // one more again
				{0, "b", "12", nil},             // 8
				{0, "c", "1", nil},              // 10
			},
			wantKeys: "a=1234 b=12 c=1", wantBytes: 10,
		},
		{
			name:     "a record over MaxBytes",
			cfg:      ValueConfig{MaxBytes: 10},
			puts:     []put{{0, "a", "1234567890", ErrStoreFull}, {0, "a", "123456789", nil}},
			wantKeys: "a=123456789", wantBytes: 10,
		},
		{
			name: "expired records make room",
			cfg:  ValueConfig{MaxRecords: 2},
			puts: []put{
				{0, "a", "1", nil}, {time.Minute, "b", "2", nil},
				{maxAge, "c", "3", ErrStoreFull},
				{maxAge + 1, "c", "3", nil},
			},
			wantKeys: "b=2 c=3", wantBytes: 4,
		},
		{
			name:     "expired bytes make room",
			cfg:      ValueConfig{MaxBytes: 10},
			puts:     []put{{0, "a", "12345678", nil}, {maxAge + 1, "b", "12345678", nil}},
			wantKeys: "b=12345678", wantBytes: 9,
		},
		{
			// Callers on several goroutines may pass times out of
			// order: the earliest still counts as the oldest.
			name: "out of order",
			cfg:  ValueConfig{MaxRecords: 2},
			puts: []put{
				{time.Hour, "a", "1", nil}, {0, "b", "2", nil},
				{maxAge + 1, "c", "3", nil}, // sweeps away b
			},
			wantKeys: "a=1 c=3", wantBytes: 4,
		},
		{
			name: "sweeps are a minute apart",
			cfg:  ValueConfig{MaxRecords: 2},
			puts: []put{
				{0, "a", "1", nil}, {10 * time.Second, "b", "2", nil},
				{maxAge + time.Second, "c", "3", nil}, // sweeps away a
				{maxAge + 11*time.Second, "d", "4", ErrStoreFull},
				{maxAge + time.Second + fullSweepGap - 1, "d", "4", ErrStoreFull},
				{maxAge + time.Second + fullSweepGap, "d", "4", nil}, // sweeps away b
			},
			wantKeys: "c=3 d=4", wantBytes: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.MaxAge = maxAge
			s := NewValueStore(tt.cfg)
			var last time.Duration
			for i, p := range tt.puts {
				err := s.Put(p.key, []byte(p.value), nil, valAt(p.at))
				if !errors.Is(err, p.wantErr) || (err == nil) != (p.wantErr == nil) {
					t.Fatalf("put %d (%s=%s at %v) = %v, want %v", i, p.key, p.value, p.at, err, p.wantErr)
				}
				last = p.at
			}
			if s.Bytes() != tt.wantBytes {
				t.Errorf("Bytes = %d, want %d", s.Bytes(), tt.wantBytes)
			}
			var held []string
			for _, k := range []string{"a", "b", "c", "d"} {
				if v, _, ok := s.Get(k, valAt(last)); ok {
					held = append(held, k+"="+string(v))
				}
			}
			if got := strings.Join(held, " "); got != tt.wantKeys || s.Len() != len(held) {
				t.Errorf("store holds %q (%d records), want %q", got, s.Len(), tt.wantKeys)
			}
		})
	}
}

// TestValueStoreNoEviction checks that a full store refuses records for
// new keys rather than drop live ones.
func TestValueStoreNoEviction(t *testing.T) {
	s := NewValueStore(ValueConfig{MaxRecords: 10})
	for i := range 10 {
		if err := s.Put(fmt.Sprint("/pk/", i), []byte("v"), nil, valAt(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if err := s.Put(fmt.Sprint("/pk/flood", i), []byte("v"), nil, valAt(47*time.Hour)); !errors.Is(err, ErrStoreFull) {
			t.Fatalf("flood put %d = %v, want ErrStoreFull", i, err)
		}
	}
	for i := range 10 {
		if _, _, ok := s.Get(fmt.Sprint("/pk/", i), valAt(47*time.Hour)); !ok {
			t.Errorf("record %d lost to the flood", i)
		}
	}
}

func TestValueStoreBadKey(t *testing.T) {
	s := NewValueStore(ValueConfig{})
	if err := s.Put("", []byte("v"), nil, valEpoch); !errors.Is(err, ErrBadKey) {
		t.Errorf("Put with an empty key = %v, want ErrBadKey", err)
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Errorf("refused record stored: %d records, %d bytes", s.Len(), s.Bytes())
	}
}

func TestValueStoreGC(t *testing.T) {
	const maxAge = 10 * time.Hour
	s := NewValueStore(ValueConfig{MaxAge: maxAge})
	for i := range 4 {
		if err := s.Put(fmt.Sprint("k", i), []byte("vv"), nil, valAt(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		at          time.Duration
		wantRemoved int
		wantLen     int
	}{
		{0, 0, 4},
		{maxAge, 0, 4},
		{maxAge + 1, 1, 3},
		{maxAge + 2*time.Hour + 1, 2, 1},
		{maxAge + 4*time.Hour, 1, 0},
		{maxAge + 5*time.Hour, 0, 0},
	}
	for _, tt := range tests {
		removed := s.GC(valAt(tt.at))
		if removed != tt.wantRemoved || s.Len() != tt.wantLen || s.Bytes() != 4*tt.wantLen {
			t.Errorf("GC at %v removed %d, left %d records, %d bytes; want %d, %d, %d",
				tt.at, removed, s.Len(), s.Bytes(), tt.wantRemoved, tt.wantLen, 4*tt.wantLen)
		}
	}
}

// TestValueStoreSweepOldest checks that a sweep finds the oldest record
// left, which decides when the next is due.
func TestValueStoreSweepOldest(t *testing.T) {
	s := NewValueStore(ValueConfig{MaxAge: time.Hour})
	for i := range 50 {
		if err := s.Put(fmt.Sprint("k", i), []byte("v"), nil, valAt(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if removed := s.GC(valAt(time.Hour + 9*time.Minute + 1)); removed != 10 {
		t.Fatalf("GC removed %d records, want 10", removed)
	}
	if want := valAt(10 * time.Minute); !s.oldest.Equal(want) {
		t.Errorf("oldest = %v, want %v", s.oldest, want)
	}
}

// TestValueStoreConcurrent is for the race detector.
func TestValueStoreConcurrent(t *testing.T) {
	s := NewValueStore(ValueConfig{MaxRecords: 20, MaxAge: time.Minute})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			better := func(stored []byte) (bool, error) { return len(stored)%2 == 0, nil }
			for i := range 500 {
				now := valAt(time.Duration(i) * time.Second)
				key := fmt.Sprint("/pk/", (g*7+i)%40)
				err := s.Put(key, []byte(strings.Repeat("v", i%5)), better, now)
				if err != nil && !errors.Is(err, ErrStoreFull) && !errors.Is(err, ErrNotBetter) {
					t.Errorf("Put: %v", err)
					return
				}
				s.Get(key, now)
				if i%50 == 0 {
					s.GC(now)
				}
			}
		})
	}
	wg.Wait()
	if s.Len() > 20 {
		t.Errorf("%d records, over MaxRecords", s.Len())
	}
}
