package exi

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
)

// writer appends bits most significant first, as EXI's bit-packed
// alignment does.
type writer struct {
	buf  []byte
	nbit uint // bits used in the last byte (0 = start a new byte)
}

func (w *writer) writeBits(v uint64, n uint8) {
	for n > 0 {
		if w.nbit == 0 {
			w.buf = append(w.buf, 0)
		}
		free := 8 - uint8(w.nbit)
		take := min(free, n)
		bits := byte(v>>(n-take)) & (1<<take - 1)
		w.buf[len(w.buf)-1] |= bits << (free - take)
		w.nbit = (w.nbit + uint(take)) & 7
		n -= take
	}
}

// writeByte writes 8 bits: the high bits finish the last byte, the low
// ones start the next.
func (w *writer) writeByte(b byte) {
	if w.nbit == 0 {
		w.buf = append(w.buf, b)
		return
	}
	w.buf[len(w.buf)-1] |= b >> w.nbit
	w.buf = append(w.buf, b<<(8-w.nbit))
}

// writeBytes writes bytes as 8 bits each (binary values).
func (w *writer) writeBytes(p []byte) {
	if w.nbit == 0 {
		w.buf = append(w.buf, p...)
		return
	}
	// Unaligned: each byte straddles two, shifted by the bits in use.
	// Certificates are most of what is written, so eight bytes go at a
	// time: their 64 bits finish one byte of dst and fill the next eight.
	shift := w.nbit
	n := len(w.buf)
	w.buf = slices.Grow(w.buf, len(p))[:n+len(p)]
	dst := w.buf[n-1:]
	i := 0
	for ; i+8 <= len(p); i += 8 {
		v := binary.BigEndian.Uint64(p[i:])
		dst[i] |= byte(v >> (56 + shift))
		binary.BigEndian.PutUint64(dst[i+1:], v<<(8-shift))
	}
	for ; i < len(p); i++ {
		dst[i] |= p[i] >> shift
		dst[i+1] = p[i] << (8 - shift)
	}
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
	for n > 0 {
		off := uint8(r.pos & 7)
		take := min(8-off, n)
		b := r.buf[r.pos>>3] >> (8 - off - take) & (1<<take - 1)
		v = v<<take | uint64(b)
		r.pos += uint(take)
		n -= take
	}
	return v, nil
}

func (r *reader) readByte() (byte, error) {
	if r.remaining() < 8 {
		return 0, errTruncated
	}
	i, off := r.pos>>3, r.pos&7
	r.pos += 8
	if off == 0 {
		return r.buf[i], nil
	}
	return r.buf[i]<<off | r.buf[i+1]>>(8-off), nil
}

// readBytes fills p with 8-bit bytes (binary values).
func (r *reader) readBytes(p []byte) error {
	if uint(len(p))*8 > r.remaining() {
		return errTruncated
	}
	if r.pos&7 == 0 {
		i := r.pos >> 3
		copy(p, r.buf[i:])
		r.pos += uint(len(p)) * 8
		return nil
	}
	// Unaligned: byte k of p is the low bits of one byte of the stream
	// and the high bits of the next; eight at a time, as writeBytes.
	shift := r.pos & 7
	src := r.buf[r.pos>>3:]
	k := 0
	for ; k+8 <= len(p); k += 8 {
		v := binary.BigEndian.Uint64(src[k:])<<shift | uint64(src[k+8])>>(8-shift)
		binary.BigEndian.PutUint64(p[k:], v)
	}
	for ; k < len(p); k++ {
		p[k] = src[k]<<shift | src[k+1]>>(8-shift)
	}
	r.pos += uint(len(p)) * 8
	return nil
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
