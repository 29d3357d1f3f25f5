package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/pncpki/pncpki/api/gen/pncpki/v1/pncpkiv1connect"
)

// ServiceNames are the API's gRPC services, as reflection lists them.
var ServiceNames = []string{
	pncpkiv1connect.CertificateServiceName, pncpkiv1connect.AuthorityServiceName, pncpkiv1connect.TenantServiceName,
	pncpkiv1connect.TokenServiceName, pncpkiv1connect.AuditServiceName, pncpkiv1connect.StationServiceName,
	pncpkiv1connect.ContractServiceName, pncpkiv1connect.ProvisioningServiceName, pncpkiv1connect.OCPPServiceName,
}

// Introspection returns, by path prefix, the handlers of gRPC server
// reflection (v1 and v1alpha, so grpcurl and grpcui need no .proto
// files) and of the gRPC health service (what a gRPC load balancer
// asks). Neither needs a token: they say what the API is, not what it
// holds. They speak gRPC, gRPC-Web and Connect, not REST, so they are
// served beside Handler rather than through its transcoder.
func (s *Server) Introspection() map[string]http.Handler {
	reflector := grpcreflect.NewStaticReflector(ServiceNames...)
	out := map[string]http.Handler{}
	for _, f := range []func() (string, http.Handler){
		func() (string, http.Handler) { return grpcreflect.NewHandlerV1(reflector) },
		func() (string, http.Handler) { return grpcreflect.NewHandlerV1Alpha(reflector) },
		func() (string, http.Handler) { return grpchealth.NewHandler(health{s}) },
	} {
		path, h := f()
		out[path] = h
	}
	return out
}

// health answers SERVING while the store answers, for the whole server
// ("") and for each API service.
type health struct{ s *Server }

func (h health) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if req.Service != "" && !slices.Contains(ServiceNames, req.Service) {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", req.Service))
	}
	if _, err := h.s.Store.CAs(ctx); err != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}
