package contract

import (
	"testing"

	"github.com/pncpki/pncpki/contract/exi"
)

func BenchmarkTmpSignature(b *testing.B) {
	e := newInstallEnv(b)
	cps := e.in.CPS[0]
	chain := cps.Chain[:2]
	enc := make([]byte, 48)
	dh := make([]byte, 65)
	for b.Loop() {
		signed := []*exi.Element{
			certChain("ContractSignatureCertChain", "id1", chain),
			exi.Binary("ContractSignatureEncryptedPrivateKey", enc).WithAttr("Id", "id2"),
			exi.Binary("DHpublickey", dh).WithAttr("Id", "id3"),
			exi.Text("eMAID", "DE8AA1A2B3C4D5X").WithAttrNS(nsDataTypes, "Id", "id4"),
		}
		if _, err := signature(cps.Signer, signed...); err != nil {
			b.Fatal(err)
		}
	}
}
