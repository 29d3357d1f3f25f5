package xsdgen

import (
	"path/filepath"

	"github.com/pncpki/pncpki/contract/exi"
)

// ISO2 generates the Go tables for ISO 15118-2: the message set of
// V2G_CI_MsgDef (with its header, body, data types and XML Signature) and,
// separately, XML Signature alone, whose fragment grammar is the one
// SignedInfo is signed in.
func ISO2(spec string) ([]byte, error) {
	msg, err := Build("iso15118-2", filepath.Join(spec, "iso15118-2", "V2G_CI_MsgDef.xsd"))
	if err != nil {
		return nil, err
	}
	dsig, err := Build("xmldsig", filepath.Join(spec, "iso15118-2", "xmldsig-core-schema.xsd"))
	if err != nil {
		return nil, err
	}
	return Write("exi", "iso15118-2/V2G_CI_MsgDef.xsd and xmldsig-core-schema.xsd",
		map[string]*exi.Schema{"ISO2": msg, "XMLDSig": dsig}, []string{"ISO2", "XMLDSig"})
}
