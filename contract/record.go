package contract

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/pncpki/pncpki/store"
)

// Sources of an installation's answer, as the installation log names them.
const (
	sourceIssued   = "issued"   // a contract certificate issued now
	sourceDeposit  = "deposit"  // an eMSP's deposited contract data
	sourceUpstream = "upstream" // the ecosystem's answer
	sourceRepeated = "repeated" // the answer to the same request a moment ago
)

// record appends an answered request to the installation log: what
// handle learned of it (rec) and what the vehicle gets. A log that
// cannot be written costs a warning, never the vehicle's answer: the
// certificate, if any, is stored already.
func (in *Installer) record(ctx context.Context, rec *store.InstallationRecord, action Action, res *Response, err error) {
	rec.Action = string(action)
	var ie *InstallError
	switch {
	case errors.As(err, &ie):
		rec.ResponseCode, rec.Reason, rec.Source = ie.ResponseCode, ie.Reason, ""
		rec.Size = base64.StdEncoding.EncodedLen(len(ie.Answer))
	case err != nil:
		rec.ResponseCode, rec.Reason, rec.Source = ResponseFailed, "error", ""
	default:
		rec.ResponseCode = ResponseOK
		rec.Size = base64.StdEncoding.EncodedLen(len(res.EXI))
		if res.EMAID != "" {
			rec.EMAID = res.EMAID
		}
		switch {
		case res.Repeated:
			rec.Source = sourceRepeated
		case res.Upstream:
			rec.Source = sourceUpstream
		}
	}
	// The vehicle's answer must not wait on a cancelled caller's context.
	if err := in.Pool.Store.PutInstallation(context.WithoutCancel(ctx), rec); err != nil {
		in.log().Warn("installation not logged", "pcid", rec.PCID, "err", err)
	}
}
