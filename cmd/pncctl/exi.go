package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/contract/exi"
)

// maxEXIInput bounds what pncctl exi reads: far above any ISO 15118-2
// message (OCPP 2.1 allows 17,000 base64 characters).
const maxEXIInput = 1 << 20

// exiSchemas are the schemas pncctl exi knows, by --schema.
var exiSchemas = map[string]*exi.Schema{"iso15118-2": exi.ISO2, "iso15118-20": exi.ISO20, "xmldsig": exi.XMLDSig}

func (a *app) exiCmd() *cobra.Command {
	c := &cobra.Command{Use: "exi", Short: "Decode and encode ISO 15118-2 and -20 EXI messages (as OCPP's exiRequest/exiResponse carry them)"}
	var schemaName string
	var fragment bool
	var format string
	schema := func() (*exi.Schema, error) {
		s, ok := exiSchemas[schemaName]
		if !ok {
			return nil, usageError{fmt.Errorf("--schema %q: want iso15118-2, iso15118-20 or xmldsig", schemaName)}
		}
		return s, nil
	}
	decode := &cobra.Command{
		Use: "decode [FILE|-]", Short: "Print an EXI message (raw, hex or base64) as JSON",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := schema()
			if err != nil {
				return err
			}
			path := "-"
			if len(args) == 1 {
				path = args[0]
			}
			in, err := readBounded(path, maxEXIInput)
			if err != nil {
				return err
			}
			data := exiBytes(in)
			var els []*exi.Element
			if fragment {
				els, err = s.DecodeFragment(data)
			} else {
				var el *exi.Element
				el, err = s.Decode(data)
				els = []*exi.Element{el}
			}
			if err != nil {
				return err
			}
			out, err := exi.JSON(els...)
			if err != nil {
				return err
			}
			_, err = a.out.Write(out)
			return err
		},
	}
	encode := &cobra.Command{
		Use: "encode [FILE|-]", Short: "Encode the JSON that decode prints back into EXI (base64, hex or raw)",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := schema()
			if err != nil {
				return err
			}
			path := "-"
			if len(args) == 1 {
				path = args[0]
			}
			in, err := readBounded(path, maxEXIInput)
			if err != nil {
				return err
			}
			els, err := exi.ParseJSON(in)
			if err != nil {
				return err
			}
			var out []byte
			switch {
			case fragment:
				out, err = s.EncodeFragment(els...)
			case len(els) != 1:
				return errors.New("a document has one root element (use --fragment for several)")
			default:
				out, err = s.Encode(els[0])
			}
			if err != nil {
				return err
			}
			switch format {
			case "base64":
				fmt.Fprintln(a.out, base64.StdEncoding.EncodeToString(out))
			case "hex":
				fmt.Fprintln(a.out, hex.EncodeToString(out))
			case "raw":
				_, err = a.out.Write(out)
			default:
				return fmt.Errorf("--format %q: want base64, hex or raw", format)
			}
			return err
		},
	}
	encode.Flags().StringVar(&format, "format", "base64", "output: base64 (as OCPP carries it), hex or raw")
	for _, cmd := range []*cobra.Command{decode, encode} {
		cmd.Flags().StringVar(&schemaName, "schema", "iso15118-2", "the schema: iso15118-2 (V2G_Message and its fragments), iso15118-20 (CommonMessages and their fragments) or xmldsig (SignedInfo as it is signed)")
		cmd.Flags().BoolVar(&fragment, "fragment", false, "an EXI fragment (what ISO 15118 digests and signs) instead of a document")
	}
	c.AddCommand(decode, encode)
	return c
}

// exiBytes accepts raw EXI, hex or base64 (what OCPP carries): EXI of the
// ISO 15118 profiles starts with byte 0x80, which is neither.
func exiBytes(in []byte) []byte {
	if len(in) > 0 && in[0] == 0x80 {
		return in
	}
	s := strings.Join(strings.Fields(string(in)), "")
	if b, err := hex.DecodeString(s); err == nil {
		return b
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b
	}
	return bytes.TrimSpace(in)
}
