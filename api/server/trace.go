package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
)

// traceService answers Trace. The simulator belongs to the trace issue (F5);
// until it is wired in, Trace reports that it is not available.
type traceService struct {
	govnv1.UnimplementedTraceServiceServer
}

func (traceService) Trace(context.Context, *govnv1.TraceRequest) (*govnv1.TraceResponse, error) {
	return nil, status.Error(codes.Unimplemented, "Trace is not available yet in this govn build (the trace simulator, issue F5, is not wired into the API)")
}
