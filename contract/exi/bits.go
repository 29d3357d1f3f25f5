package exi

import (
	"fmt"
	"math/big"
	"math/bits"
)

// writer appends bits most significant first, as EXI's bit-packed
// alignment does.
type writer struct {
	buf  []byte
	nbit uint // bits used in the last byte (0 = start a new byte)
}

func (w *writer) writeBits(v uint64, n uint8) {
	for i := int(n) - 1; i >= 0; i-- {
		if w.nbit == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.buf[len(w.buf)-1] |= 0x80 >> w.nbit
		}
		w.nbit = (w.nbit + 1) & 7
	}
}

// writeByte writes 8 bits; aligned writes take the fast path.
func (w *writer) writeByte(b byte) {
	if w.nbit == 0 {
		w.buf = append(w.buf, b)
		return
	}
	w.writeBits(uint64(b), 8)
}

// writeUnsigned writes an EXI Unsigned Integer: 7-bit groups, least
// significant first, the high bit of each octet saying another follows.
func (w *writer) writeUnsigned(v uint64) {
	for v >= 0x80 {
		w.writeByte(byte(v) | 0x80)
		v >>= 7
	}
	w.writeByte(byte(v))
}

func (w *writer) writeBigUnsigned(v *big.Int) {
	if v.IsUint64() {
		w.writeUnsigned(v.Uint64())
		return
	}
	x := new(big.Int).Set(v)
	mask := big.NewInt(0x7f)
	g := new(big.Int)
	for x.BitLen() > 7 {
		w.writeByte(byte(g.And(x, mask).Uint64()) | 0x80)
		x.Rsh(x, 7)
	}
	w.writeByte(byte(x.Uint64()))
}

// reader reads what writer writes and reports where it ran out.
type reader struct {
	buf []byte
	pos uint // bit position
}

// errTruncated is wrapped with the position where the stream ended.
var errTruncated = fmt.Errorf("stream truncated")

func (r *reader) remaining() uint { return uint(len(r.buf))*8 - r.pos }

func (r *reader) readBits(n uint8) (uint64, error) {
	if uint(n) > r.remaining() {
		return 0, errTruncated
	}
	var v uint64
	for i := uint8(0); i < n; i++ {
		b := r.buf[r.pos>>3] >> (7 - r.pos&7) & 1
		v = v<<1 | uint64(b)
		r.pos++
	}
	return v, nil
}

func (r *reader) readByte() (byte, error) {
	if r.pos&7 == 0 {
		if r.remaining() < 8 {
			return 0, errTruncated
		}
		b := r.buf[r.pos>>3]
		r.pos += 8
		return b, nil
	}
	v, err := r.readBits(8)
	return byte(v), err
}

// readUnsigned reads an Unsigned Integer that must fit in 63 bits.
func (r *reader) readUnsigned() (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		b, err := r.readByte()
		if err != nil {
			return 0, err
		}
		if shift > 56 {
			return 0, fmt.Errorf("unsigned integer longer than 63 bits")
		}
		v |= uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return v, nil
		}
	}
}

// readBigUnsigned reads an Unsigned Integer of at most maxBits bits.
func (r *reader) readBigUnsigned(maxBits int) (*big.Int, error) {
	var groups []byte
	for {
		b, err := r.readByte()
		if err != nil {
			return nil, err
		}
		groups = append(groups, b&0x7f)
		if len(groups)*7 > maxBits+7 {
			return nil, fmt.Errorf("integer longer than %d bits", maxBits)
		}
		if b&0x80 == 0 {
			break
		}
	}
	v := new(big.Int)
	for i := len(groups) - 1; i >= 0; i-- {
		v.Lsh(v, 7)
		v.Or(v, big.NewInt(int64(groups[i])))
	}
	if v.BitLen() > maxBits {
		return nil, fmt.Errorf("integer longer than %d bits", maxBits)
	}
	return v, nil
}

// codeBits is the width of an event code choosing among n values.
func codeBits(n int) uint8 {
	if n <= 1 {
		return 0
	}
	return uint8(bits.Len(uint(n - 1)))
}
