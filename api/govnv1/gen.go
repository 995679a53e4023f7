// Package govnv1 holds the Go code generated from api/proto/govn/v1 (the
// govn.v1 gRPC API). Regenerate with `go generate ./api/...` (make generate);
// never edit the *.pb.go files by hand.
package govnv1

//go:generate protoc -I ../proto --go_out=. --go_opt=module=github.com/govn/govn/api/govnv1 --go-grpc_out=. --go-grpc_opt=module=github.com/govn/govn/api/govnv1 govn/v1/resources.proto govn/v1/services.proto
