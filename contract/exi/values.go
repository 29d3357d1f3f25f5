package exi

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds on what a value may claim where the schema sets no limit, so
// that a hostile length prefix cannot make the decoder allocate.
const (
	maxUnboundedLen = 1 << 16 // characters of a string, bytes of a binary
	maxIntegerBits  = 512     // magnitude of an unbounded xs:integer
)

// Values are carried in their XML lexical form (base64 for base64Binary,
// upper-case hex for hexBinary, decimal for integers, true/false), so a
// decoded message prints as the XML it stands for and encodes back the
// same.

func (t *SimpleType) checkLen(n int) error {
	if t.MaxLen >= 0 && n > int(t.MaxLen) {
		return fmt.Errorf("length %d over the maximum %d of %s", n, t.MaxLen, t.Name)
	}
	if t.MinLen >= 0 && n < int(t.MinLen) {
		return fmt.Errorf("length %d under the minimum %d of %s", n, t.MinLen, t.Name)
	}
	return nil
}

func (t *SimpleType) maxLen() int {
	if t.MaxLen >= 0 {
		return int(t.MaxLen)
	}
	return maxUnboundedLen
}

func (t *SimpleType) checkRange(v *big.Int) error {
	if t.HasMin && v.Cmp(big.NewInt(t.Min)) < 0 {
		return fmt.Errorf("%s under the minimum %d of %s", v, t.Min, t.Name)
	}
	if t.HasMax && v.Cmp(big.NewInt(t.Max)) > 0 {
		return fmt.Errorf("%s over the maximum %d of %s", v, t.Max, t.Name)
	}
	return nil
}

// encodeBinary writes a base64Binary or hexBinary value given as bytes.
func (t *SimpleType) encodeBinary(w *writer, b []byte) error {
	if t.Kind != KindBase64 && t.Kind != KindHex {
		return fmt.Errorf("%s value given as bytes", t.Name)
	}
	if err := t.checkLen(len(b)); err != nil {
		return err
	}
	w.writeUnsigned(uint64(len(b)))
	w.writeBytes(b)
	return nil
}

// encodeValue writes the lexical value s as type t.
func (t *SimpleType) encodeValue(w *writer, s string) error {
	switch t.Kind {
	case KindString:
		if !utf8.ValidString(s) {
			return fmt.Errorf("%s value is not UTF-8", t.Name)
		}
		n := utf8.RuneCountInString(s)
		if err := t.checkLen(n); err != nil {
			return err
		}
		// valuePartitionCapacity=0: every value is a string table miss,
		// coded as its length + 2 and its code points.
		w.writeUnsigned(uint64(n) + 2)
		for _, c := range s {
			w.writeUnsigned(uint64(c))
		}
	case KindBase64, KindHex:
		var b []byte
		var err error
		if t.Kind == KindBase64 {
			b, err = base64.StdEncoding.DecodeString(s)
		} else {
			b, err = hex.DecodeString(s)
		}
		if err != nil {
			return fmt.Errorf("%s value: %w", t.Name, err)
		}
		return t.encodeBinary(w, b)
	case KindBoolean:
		switch s {
		case "true", "1":
			w.writeBits(1, 1)
		case "false", "0":
			w.writeBits(0, 1)
		default:
			return fmt.Errorf("%q is not a boolean", s)
		}
	case KindInteger, KindUnsigned, KindNBit:
		v, ok := new(big.Int).SetString(strings.TrimPrefix(s, "+"), 10)
		if !ok {
			return fmt.Errorf("%q is not an integer", s)
		}
		if err := t.checkRange(v); err != nil {
			return err
		}
		switch t.Kind {
		case KindNBit:
			w.writeBits(uint64(v.Int64()-t.Min), t.Bits)
		case KindUnsigned:
			if v.Sign() < 0 {
				return fmt.Errorf("%s is negative, %s is unsigned", s, t.Name)
			}
			w.writeBigUnsigned(v)
		default:
			if v.Sign() < 0 {
				w.writeBits(1, 1)
				w.writeBigUnsigned(v.Sub(v.Neg(v), big.NewInt(1)))
			} else {
				w.writeBits(0, 1)
				w.writeBigUnsigned(v)
			}
		}
	case KindEnum:
		for i, e := range t.Enum {
			if e == s {
				w.writeBits(uint64(i), t.Bits)
				return nil
			}
		}
		return fmt.Errorf("%q is not a value of %s", s, t.Name)
	default:
		return fmt.Errorf("type %s has no EXI value encoding", t.Name)
	}
	return nil
}

// decodeValue reads a value of type t and returns its lexical form.
func (t *SimpleType) decodeValue(r *reader) (string, error) {
	switch t.Kind {
	case KindString:
		n, err := r.readUnsigned()
		if err != nil {
			return "", err
		}
		if n < 2 {
			// A string table hit: impossible with valuePartitionCapacity=0.
			return "", fmt.Errorf("string table reference in %s, but value partitions are off", t.Name)
		}
		n -= 2
		if n > uint64(t.maxLen()) {
			return "", fmt.Errorf("string of %d characters over the maximum %d of %s", n, t.maxLen(), t.Name)
		}
		if n*8 > uint64(r.remaining()) {
			return "", errTruncated
		}
		var sb strings.Builder
		sb.Grow(int(n))
		for range n {
			c, err := r.readUnsigned()
			if err != nil {
				return "", err
			}
			if c > utf8.MaxRune || !utf8.ValidRune(rune(c)) {
				return "", fmt.Errorf("code point %d is not a character", c)
			}
			sb.WriteRune(rune(c))
		}
		if err := t.checkLen(int(n)); err != nil {
			return "", err
		}
		return sb.String(), nil
	case KindBase64, KindHex:
		n, err := r.readUnsigned()
		if err != nil {
			return "", err
		}
		if n > uint64(t.maxLen()) {
			return "", fmt.Errorf("binary of %d bytes over the maximum %d of %s", n, t.maxLen(), t.Name)
		}
		if n*8 > uint64(r.remaining()) {
			return "", errTruncated
		}
		b := make([]byte, n)
		if err := r.readBytes(b); err != nil {
			return "", err
		}
		if err := t.checkLen(len(b)); err != nil {
			return "", err
		}
		if t.Kind == KindBase64 {
			return base64.StdEncoding.EncodeToString(b), nil
		}
		return strings.ToUpper(hex.EncodeToString(b)), nil
	case KindBoolean:
		v, err := r.readBits(1)
		if err != nil {
			return "", err
		}
		return strconv.FormatBool(v == 1), nil
	case KindNBit:
		v, err := r.readBits(t.Bits)
		if err != nil {
			return "", err
		}
		x := int64(v) + t.Min
		if t.HasMax && x > t.Max {
			return "", fmt.Errorf("%d over the maximum %d of %s", x, t.Max, t.Name)
		}
		return strconv.FormatInt(x, 10), nil
	case KindUnsigned, KindInteger:
		neg := false
		if t.Kind == KindInteger {
			s, err := r.readBits(1)
			if err != nil {
				return "", err
			}
			neg = s == 1
		}
		v, err := r.readBigUnsigned(maxIntegerBits)
		if err != nil {
			return "", err
		}
		if neg {
			v.Neg(v.Add(v, big.NewInt(1)))
		}
		if err := t.checkRange(v); err != nil {
			return "", err
		}
		return v.String(), nil
	case KindEnum:
		v, err := r.readBits(t.Bits)
		if err != nil {
			return "", err
		}
		if v >= uint64(len(t.Enum)) {
			return "", fmt.Errorf("enumeration index %d out of range for %s", v, t.Name)
		}
		return t.Enum[v], nil
	}
	return "", fmt.Errorf("type %s has no EXI value encoding", t.Name)
}
