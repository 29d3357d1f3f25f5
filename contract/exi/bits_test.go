package exi

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestWriteBytes checks the word-at-a-time writeBytes against writing the
// same bytes one by one, at every bit offset and for lengths around the
// word size, and that the reader gets them back.
func TestWriteBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for offset := range uint8(8) {
		for n := range 40 {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			lead := r.Uint64()
			var got, want writer
			for _, w := range []*writer{&got, &want} {
				w.writeBits(lead, offset)
			}
			got.writeBytes(p)
			for _, b := range p {
				want.writeByte(b)
			}
			got.writeBits(0b101, 3) // what follows lands where it should
			want.writeBits(0b101, 3)
			if !bytes.Equal(got.buf, want.buf) || got.nbit != want.nbit {
				t.Fatalf("offset %d, %d bytes:\n got %x (%d bits in the last)\nwant %x (%d)", offset, n, got.buf, got.nbit, want.buf, want.nbit)
			}
			rd := reader{buf: got.buf, pos: uint(offset)}
			back := make([]byte, n)
			err := rd.readBytes(back)
			if err != nil || !bytes.Equal(back, p) {
				t.Fatalf("offset %d, %d bytes: read back %x, %v; want %x", offset, n, back, err, p)
			}
			if tail, err := rd.readBits(3); err != nil || tail != 0b101 {
				t.Fatalf("offset %d, %d bytes: then read %b, %v; want 101", offset, n, tail, err)
			}
		}
	}
}
