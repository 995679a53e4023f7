package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/lflow/expr"
)

// invalid turns a validation failure into InvalidArgument whose details carry
// a google.rpc.BadRequest naming the field (prefixed with the resource).
func invalid(resource string, err error) error {
	field, desc := "", err.Error()
	if ve, ok := validate.AsError(err); ok {
		field, desc = ve.Field, ve.Reason
		if ve.Value != "" {
			desc = fmt.Sprintf("%q: %s", ve.Value, ve.Reason)
		}
	}
	if resource != "" && field != "" {
		field = resource + "." + field
	}
	st := status.New(codes.InvalidArgument, err.Error())
	if field != "" {
		details := []protoadapt.MessageV1{&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: field, Description: desc},
		}}}
		// A match error also says where: line and column in the match text.
		var me *expr.Error
		if errors.As(err, &me) {
			details = append(details, &errdetails.ErrorInfo{Reason: "INVALID_MATCH", Domain: "govn.v1", Metadata: map[string]string{
				"field": field, "line": strconv.Itoa(me.Pos.Line), "column": strconv.Itoa(me.Pos.Col), "message": me.Msg,
			}})
		}
		if d, derr := st.WithDetails(details...); derr == nil {
			st = d
		}
	}
	return st.Err()
}

func badField(resource, field, value, format string, args ...any) error {
	return invalid(resource, &validate.Error{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)})
}

func notFound(format string, args ...any) error {
	return status.Errorf(codes.NotFound, format, args...)
}

func alreadyExists(format string, args ...any) error {
	return status.Errorf(codes.AlreadyExists, format, args...)
}

func conflict(format string, args ...any) error {
	return status.Errorf(codes.FailedPrecondition, format, args...)
}

func internal(err error) error {
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}

func unavailable(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Unavailable, "northbound database: "+err.Error())
}

// transactionError maps a rejected transaction: schema constraint failures
// are the caller's (FailedPrecondition), anything else the server's.
func transactionError(te *ovsdbclient.TransactionError, _ int) error {
	for _, e := range te.ServerErrors() {
		switch e {
		case "constraint violation", "referential integrity violation":
			return status.Error(codes.FailedPrecondition, te.Error())
		case "timed out":
			return status.Error(codes.Aborted, "a concurrent change conflicted with this request; retry: "+te.Error())
		}
	}
	return status.Error(codes.Internal, te.Error())
}

// kindOf names a resource in messages ("logical switch").
func kindOf(table string) string { return strings.ReplaceAll(strings.ToLower(table), "_", " ") }
