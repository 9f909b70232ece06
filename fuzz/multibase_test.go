package fuzz

import (
	"testing"

	"github.com/mote-p2p/mote/wire/multibase"
)

// FuzzMultibase: decoding any text returns a value or an error, never a
// panic or a hang (base58 and base36 are quadratic; the length bound keeps
// them cheap), and base58 text that decodes encodes back to itself.
func FuzzMultibase(f *testing.F) {
	for _, s := range []string{
		"zQmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
		"bafzaajaiaejcal72gwuz2or47oyxxn6b3rkwdmmkrxgkjxzy3rqt5kczyn7lcm3l",
		"k51qzi5uqu5dl6dk0zoaocksijnghdrkxir5m5yfcodish4se4cyg4ak4cye7i",
		"uEiDKl4ESyhu9yvrCMbOaI9xNp4bv-BR8TnK5gHeFr-5Iuw",
		"f0102", "m", "", "z1", "Z11",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if b, err := multibase.Decode(s); err == nil && len(b) > multibase.MaxLen*2 {
			t.Fatalf("%d bytes decoded past the bound", len(b))
		}
		b, err := multibase.DecodeBase58(s)
		if err != nil {
			return
		}
		if back := string(multibase.AppendBase58(nil, string(b))); back != s {
			t.Fatalf("base58 %q decodes to %x, which encodes to %q", s, b, back)
		}
	})
}
