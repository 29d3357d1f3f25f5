package main

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pncpki/pncpki/api"
)

// TestGRPCIntrospection: pncd answers gRPC server reflection (so grpcurl
// lists and calls the API without .proto files) and the gRPC health
// service, over gRPC on HTTP/2 and without a token.
func TestGRPCIntrospection(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewUnstartedServer(limitHeaders(allRoutes(t)))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	health := grpchealth.NewClient(srv.Client(), srv.URL, connect.WithGRPC())
	for _, service := range []string{"", api.ServiceNames[0]} {
		r, err := health.Check(ctx, &grpchealth.CheckRequest{Service: service})
		if err != nil || r.Status != grpchealth.StatusServing {
			t.Errorf("health of %q: %v %v", service, r, err)
		}
	}
	if _, err := health.Check(ctx, &grpchealth.CheckRequest{Service: "no.such.Service"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("health of an unknown service: %v", err)
	}

	stream := grpcreflect.NewClient(srv.Client(), srv.URL, connect.WithGRPC()).NewStream(ctx)
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range api.ServiceNames {
		if !slices.ContainsFunc(names, func(n protoreflect.FullName) bool { return string(n) == want }) {
			t.Errorf("reflection lists %v, not %s", names, want)
		}
	}
	files, err := stream.FileContainingSymbol(protoreflect.FullName(api.ServiceNames[0]))
	if err != nil || len(files) == 0 {
		t.Errorf("reflection has no descriptor of %s: %v", api.ServiceNames[0], err)
	}
}
