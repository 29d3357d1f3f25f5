package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

type contracts struct{ s *Server }

func contractProto(c *store.Contract) *pncpkiv1.Contract {
	p := &pncpkiv1.Contract{Emaid: c.EMAID, Tenant: c.Tenant, Pcid: c.PCID, Default: c.Default, CreatedAt: timestamppb.New(c.CreatedAt)}
	if !c.ValidUntil.IsZero() {
		p.ValidUntil = timestamppb.New(c.ValidUntil)
	}
	if c.Cancelled() {
		p.CancelledAt = timestamppb.New(c.CancelledAt)
	}
	return p
}

// actingTenant is the tenant a call acts for: "" for administrators.
func actingTenant(ctx context.Context) string {
	if c := claimsFrom(ctx); c.Role != auth.RoleAdmin {
		return c.Tenant
	}
	return ""
}

// scopeTenant is the tenant a listing covers: for administrators the one
// asked for ("" for all), for operators their own, who may not ask for
// another's (verb says what they tried).
func scopeTenant(ctx context.Context, asked, verb string) (string, error) {
	c := claimsFrom(ctx)
	if c.Role == auth.RoleAdmin {
		return asked, nil
	}
	if asked != "" && asked != c.Tenant {
		return "", forbidden("a token of tenant %s cannot %s tenant %s", c.Tenant, verb, asked)
	}
	return c.Tenant, nil
}

// contractError maps the pool's refusals to API errors.
func contractError(err error) error {
	var pe *contract.Error
	if !errors.As(err, &pe) {
		return apiError(err)
	}
	c := connect.CodeInvalidArgument
	switch pe.Code {
	case contract.CodeNotFound:
		c = connect.CodeNotFound
	case contract.CodeForbidden:
		c = connect.CodePermissionDenied
	}
	return newError(c, pe.Code, pe)
}

// contractPool is the server's pool, or the error that says there is none.
func (s *Server) contractPool() (*contract.Pool, error) {
	if s.Contracts == nil {
		return nil, newError(connect.CodeUnimplemented, CodeContractDisabled, errors.New("contract.disabled: this server has no contract pool"))
	}
	return s.Contracts, nil
}

func (h *contracts) PutContract(ctx context.Context, req *connect.Request[pncpkiv1.PutContractRequest]) (*connect.Response[pncpkiv1.PutContractResponse], error) {
	p, err := h.s.contractPool()
	if err != nil {
		return nil, err
	}
	in := req.Msg.Contract
	if in == nil {
		return nil, invalid("request.invalid", "contract is required")
	}
	c := store.Contract{EMAID: in.Emaid, Tenant: in.Tenant, PCID: in.Pcid, Default: in.Default}
	if in.ValidUntil != nil {
		c.ValidUntil = in.ValidUntil.AsTime()
	}
	out, err := p.Put(ctx, actingTenant(ctx), c)
	if err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.PutContractResponse{Contract: contractProto(out)}), nil
}

func (h *contracts) GetContract(ctx context.Context, req *connect.Request[pncpkiv1.GetContractRequest]) (*connect.Response[pncpkiv1.GetContractResponse], error) {
	p, err := h.s.contractPool()
	if err != nil {
		return nil, err
	}
	c, err := p.Get(ctx, actingTenant(ctx), req.Msg.Emaid)
	if err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.GetContractResponse{Contract: contractProto(c)}), nil
}

func (h *contracts) ListContracts(ctx context.Context, req *connect.Request[pncpkiv1.ListContractsRequest]) (*connect.Response[pncpkiv1.ListContractsResponse], error) {
	tenant := req.Msg.Tenant
	if t := actingTenant(ctx); t != "" {
		if tenant != "" && tenant != t {
			return nil, forbidden("a token of tenant %s cannot list tenant %s", t, tenant)
		}
		tenant = t
	}
	list, err := h.s.Store.ListContracts(ctx, tenant, req.Msg.Pcid)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListContractsResponse{}
	for _, c := range list {
		resp.Contracts = append(resp.Contracts, contractProto(c))
	}
	return connect.NewResponse(resp), nil
}

func (h *contracts) CancelContract(ctx context.Context, req *connect.Request[pncpkiv1.CancelContractRequest]) (*connect.Response[pncpkiv1.CancelContractResponse], error) {
	p, err := h.s.contractPool()
	if err != nil {
		return nil, err
	}
	c, revoked, err := p.Cancel(ctx, actingTenant(ctx), req.Msg.Emaid)
	if err != nil {
		if c != nil { // cancelled, but a revocation failed: say so
			return nil, apiError(fmt.Errorf("contract %s cancelled, %d certificates revoked, then: %w", c.EMAID, len(revoked), err))
		}
		return nil, contractError(err)
	}
	resp := &pncpkiv1.CancelContractResponse{Contract: contractProto(c)}
	for _, r := range revoked { // the pool's Revoked hook told OCSP
		resp.Revoked = append(resp.Revoked, toProto(r, h.s.Now()))
	}
	return connect.NewResponse(resp), nil
}

type provisioning struct{ s *Server }

func provisioningProto(p *store.ProvisioningCertificate) *pncpkiv1.ProvisioningCertificate {
	out := &pncpkiv1.ProvisioningCertificate{Pcid: p.PCID, Tenant: p.Tenant, CreatedAt: timestamppb.New(p.CreatedAt),
		Pem: ca.CertificatePEM(p.DER)}
	if certs, err := x509.ParseCertificates(p.Chain); err == nil {
		out.Pem += ocppsec.EncodePEMChain(certs...)
	}
	return out
}

// oemRoots are the OEM trust anchors a provisioning chain must lead to;
// nil (no check) when none are configured.
func (h *provisioning) oemRoots() []*x509.Certificate {
	return h.s.trustAnchors()[ocppsec.UseOEM]
}

func (h *provisioning) PutProvisioningCertificate(ctx context.Context, req *connect.Request[pncpkiv1.PutProvisioningCertificateRequest]) (*connect.Response[pncpkiv1.PutProvisioningCertificateResponse], error) {
	pool, err := h.s.contractPool()
	if err != nil {
		return nil, err
	}
	certs, err := ocppsec.ParsePEMChain([]byte(req.Msg.Pem))
	if err != nil {
		return nil, invalid("contract.invalid", "pem: %v", err)
	}
	if pcid, err := policies.NormalizePCID(req.Msg.Pcid); err != nil || pcid != strings.ToUpper(certs[0].Subject.CommonName) {
		return nil, invalid("contract.invalid", "the path's PCID %q is not the certificate's CN %q", req.Msg.Pcid, certs[0].Subject.CommonName)
	}
	rec, err := pool.PutProvisioning(ctx, actingTenant(ctx), req.Msg.Tenant, certs, h.oemRoots())
	if err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.PutProvisioningCertificateResponse{Certificate: provisioningProto(rec)}), nil
}

func (h *provisioning) GetProvisioningCertificate(ctx context.Context, req *connect.Request[pncpkiv1.GetProvisioningCertificateRequest]) (*connect.Response[pncpkiv1.GetProvisioningCertificateResponse], error) {
	pool, err := h.s.contractPool()
	if err != nil {
		return nil, err
	}
	rec, err := pool.ReadProvisioning(ctx, actingTenant(ctx), req.Msg.Pcid)
	if err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.GetProvisioningCertificateResponse{Certificate: provisioningProto(rec)}), nil
}

func (h *provisioning) ListProvisioningCertificates(ctx context.Context, req *connect.Request[pncpkiv1.ListProvisioningCertificatesRequest]) (*connect.Response[pncpkiv1.ListProvisioningCertificatesResponse], error) {
	tenant := req.Msg.Tenant
	if t := actingTenant(ctx); t != "" {
		if tenant != "" && tenant != t {
			return nil, forbidden("a token of tenant %s cannot list tenant %s", t, tenant)
		}
		tenant = t
	}
	list, err := h.s.Store.ListProvisioningCertificates(ctx, tenant)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListProvisioningCertificatesResponse{}
	for _, p := range list {
		resp.Certificates = append(resp.Certificates, provisioningProto(p))
	}
	return connect.NewResponse(resp), nil
}

func (h *provisioning) DeleteProvisioningCertificate(ctx context.Context, req *connect.Request[pncpkiv1.DeleteProvisioningCertificateRequest]) (*connect.Response[pncpkiv1.DeleteProvisioningCertificateResponse], error) {
	pool, err := h.s.contractPool()
	if err != nil {
		return nil, err
	}
	if err := pool.DeleteProvisioning(ctx, actingTenant(ctx), req.Msg.Pcid); err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.DeleteProvisioningCertificateResponse{}), nil
}

func oemSubCAProto(c *store.OEMSubCA) *pncpkiv1.OEMSubCA {
	out := &pncpkiv1.OEMSubCA{Sha256: c.SHA256, Tenant: c.Tenant, CreatedAt: timestamppb.New(c.CreatedAt),
		Pem: ca.CertificatePEM(c.DER)}
	if cert, err := x509.ParseCertificate(c.DER); err == nil {
		out.Subject = ca.FormatName(cert.RawSubject)
	}
	return out
}

func (h *provisioning) RegisterOEMSubCA(ctx context.Context, req *connect.Request[pncpkiv1.RegisterOEMSubCARequest]) (*connect.Response[pncpkiv1.RegisterOEMSubCAResponse], error) {
	pool, err := h.s.contractPool()
	if err != nil {
		return nil, err
	}
	certs, err := ocppsec.ParsePEMChain([]byte(req.Msg.Pem))
	if err != nil || len(certs) != 1 {
		return nil, invalid("contract.invalid", "pem: want one certificate (%v)", err)
	}
	roots := h.s.trustAnchors()[ocppsec.UseOEM]
	rec, err := pool.PutOEMSubCA(ctx, actingTenant(ctx), req.Msg.Tenant, certs[0], roots)
	if err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.RegisterOEMSubCAResponse{SubCa: oemSubCAProto(rec)}), nil
}

func (h *provisioning) ListOEMSubCAs(ctx context.Context, req *connect.Request[pncpkiv1.ListOEMSubCAsRequest]) (*connect.Response[pncpkiv1.ListOEMSubCAsResponse], error) {
	tenant := req.Msg.Tenant
	if t := actingTenant(ctx); t != "" {
		if tenant != "" && tenant != t {
			return nil, forbidden("a token of tenant %s cannot list tenant %s", t, tenant)
		}
		tenant = t
	}
	list, err := h.s.Store.OEMSubCAs(ctx, tenant)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListOEMSubCAsResponse{}
	for _, c := range list {
		resp.SubCas = append(resp.SubCas, oemSubCAProto(c))
	}
	return connect.NewResponse(resp), nil
}

func (h *provisioning) DeleteOEMSubCA(ctx context.Context, req *connect.Request[pncpkiv1.DeleteOEMSubCARequest]) (*connect.Response[pncpkiv1.DeleteOEMSubCAResponse], error) {
	pool, err := h.s.contractPool()
	if err != nil {
		return nil, err
	}
	if err := pool.DeleteOEMSubCA(ctx, actingTenant(ctx), req.Msg.Sha256); err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.DeleteOEMSubCAResponse{}), nil
}

func depositProto(d *store.ContractDeposit) *pncpkiv1.ContractDeposit {
	out := &pncpkiv1.ContractDeposit{Pcid: d.PCID, Tenant: d.Tenant, Emaid: d.EMAID, EncryptedKey: d.EncryptedKey,
		DhPublicKey: d.DHPublicKey, CreatedAt: timestamppb.New(d.CreatedAt)}
	if certs, err := x509.ParseCertificates(d.Chain); err == nil {
		out.ChainPem = ocppsec.EncodePEMChain(certs...)
	}
	return out
}

func (h *contracts) PutContractDeposit(ctx context.Context, req *connect.Request[pncpkiv1.PutContractDepositRequest]) (*connect.Response[pncpkiv1.PutContractDepositResponse], error) {
	pool, err := h.s.contractPool()
	if err != nil {
		return nil, err
	}
	chain, err := ocppsec.ParsePEMChain([]byte(req.Msg.ChainPem))
	if err != nil {
		return nil, invalid("contract.invalid", "chainPem: %v", err)
	}
	moRoots := h.s.trustAnchors()[ocppsec.UseMO]
	d, err := pool.PutDeposit(ctx, actingTenant(ctx), req.Msg.Tenant, req.Msg.Pcid, chain, req.Msg.EncryptedKey, req.Msg.DhPublicKey, moRoots)
	if err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.PutContractDepositResponse{Deposit: depositProto(d)}), nil
}

func (h *contracts) ListContractDeposits(ctx context.Context, req *connect.Request[pncpkiv1.ListContractDepositsRequest]) (*connect.Response[pncpkiv1.ListContractDepositsResponse], error) {
	tenant := req.Msg.Tenant
	if t := actingTenant(ctx); t != "" {
		if tenant != "" && tenant != t {
			return nil, forbidden("a token of tenant %s cannot list tenant %s", t, tenant)
		}
		tenant = t
	}
	list, err := h.s.Store.ListContractDeposits(ctx, tenant)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListContractDepositsResponse{}
	for _, d := range list {
		resp.Deposits = append(resp.Deposits, depositProto(d))
	}
	return connect.NewResponse(resp), nil
}

func (h *contracts) DeleteContractDeposit(ctx context.Context, req *connect.Request[pncpkiv1.DeleteContractDepositRequest]) (*connect.Response[pncpkiv1.DeleteContractDepositResponse], error) {
	pool, err := h.s.contractPool()
	if err != nil {
		return nil, err
	}
	if err := pool.DeleteDeposit(ctx, actingTenant(ctx), req.Msg.Pcid); err != nil {
		return nil, contractError(err)
	}
	return connect.NewResponse(&pncpkiv1.DeleteContractDepositResponse{}), nil
}

// maxInstallationsPage bounds a page of the installation log.
const maxInstallationsPage = 500

func (h *contracts) ListInstallations(ctx context.Context, req *connect.Request[pncpkiv1.ListInstallationsRequest]) (*connect.Response[pncpkiv1.ListInstallationsResponse], error) {
	m := req.Msg
	tenant, err := scopeTenant(ctx, m.Tenant, "list the installations of")
	if err != nil {
		return nil, err
	}
	f := store.InstallationFilter{Tenant: tenant, PCID: m.Pcid, EMAID: m.Emaid, Limit: int(m.PageSize)}
	switch {
	case f.Limit < 0 || f.Limit > maxInstallationsPage:
		return nil, newError(connect.CodeInvalidArgument, ca.CodeBadRequest, fmt.Errorf("request.invalid: page_size is over %d", maxInstallationsPage))
	case f.Limit == 0:
		f.Limit = 50
	}
	if m.PageToken != "" {
		if f.Before, err = strconv.ParseInt(m.PageToken, 10, 64); err != nil || f.Before <= 0 {
			return nil, newError(connect.CodeInvalidArgument, ca.CodeBadRequest, errors.New("request.invalid: page_token is not one ListInstallations gave"))
		}
	}
	list, err := h.s.Store.ListInstallations(ctx, f)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListInstallationsResponse{}
	for _, r := range list {
		resp.Installations = append(resp.Installations, &pncpkiv1.Installation{Seq: r.Seq, Time: timestamppb.New(r.At), Station: r.Station,
			Action: r.Action, Pcid: r.PCID, Emaid: r.EMAID, Emsp: r.EMSP, Oem: r.OEM, ResponseCode: r.ResponseCode, Reason: r.Reason,
			Source: r.Source, Size: int32(r.Size), SizeLimit: int32(r.Limit)})
	}
	if len(list) == f.Limit {
		resp.NextPageToken = strconv.FormatInt(list[len(list)-1].Seq, 10)
	}
	return connect.NewResponse(resp), nil
}
