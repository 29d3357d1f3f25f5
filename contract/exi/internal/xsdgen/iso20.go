package xsdgen

import (
	"fmt"
	"path/filepath"

	"github.com/pncpki/pncpki/contract/exi"
)

// ISO20 generates the Go tables for ISO 15118-20 CommonMessages (with
// CommonTypes and XML Signature). Its SignedInfo is signed in the
// fragment grammar of XML Signature alone, the same schema as -2's, so
// that table (XMLDSig) is not repeated.
//
// One facet is relaxed: DHPublicKey is 57 bytes for X448 (0x04 and the u
// coordinate, V2G20-2489/2495) where the XSD fixes dhPublicKeyType at
// 133, the length for SECP521. EXI encodes a binary's length in either
// case, so this changes what is accepted, not a bit of any stream.
func ISO20(spec string) ([]byte, error) {
	s, err := Build("iso15118-20", filepath.Join(spec, "iso15118-20", "V2G_CI_CommonMessages.xsd"))
	if err != nil {
		return nil, err
	}
	if err := relaxMinLen(s, "dhPublicKeyType", 57); err != nil {
		return nil, err
	}
	return Write("exi", "iso15118-20/V2G_CI_CommonMessages.xsd", map[string]*exi.Schema{"ISO20": s}, []string{"ISO20"})
}

// relaxMinLen lowers the minimum length of the simple type name.
func relaxMinLen(s *exi.Schema, name string, min int32) error {
	for i := range s.Types {
		if s.Types[i].Name == name {
			s.Types[i].MinLen = min
			return nil
		}
	}
	return fmt.Errorf("no simple type %s to relax", name)
}
