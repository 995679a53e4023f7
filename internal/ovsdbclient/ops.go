package ovsdbclient

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

var namedUUIDCounter atomic.Uint64

// NamedUUID returns a fresh named UUID ("govn_u<N>"), valid inside one
// transaction for referring to a row it inserts.
func NamedUUID() string { return "govn_u" + strconv.FormatUint(namedUUIDCounter.Add(1), 10) }

// EnsureUUID gives *uuid a named UUID if it is empty, so that other
// operations of the same transaction can refer to it. It returns the UUID.
func EnsureUUID(uuid *string) string {
	if *uuid == "" {
		*uuid = NamedUUID()
	}
	return *uuid
}

// CreateOps appends inserts of models to ops.
func CreateOps(c client.Client, ops []ovsdb.Operation, models ...model.Model) ([]ovsdb.Operation, error) {
	for _, m := range models {
		o, err := c.Create(m)
		if err != nil {
			return ops, fmt.Errorf("build insert: %w", err)
		}
		ops = append(ops, o...)
	}
	return ops, nil
}

// UpdateOps appends an update of m (selected by its UUID or a schema/client
// index) to ops; fields limits the columns written (pointers into m).
func UpdateOps(c client.Client, ops []ovsdb.Operation, m model.Model, fields ...any) ([]ovsdb.Operation, error) {
	o, err := c.Where(m).Update(m, fields...)
	if err != nil {
		return ops, fmt.Errorf("build update: %w", err)
	}
	return append(ops, o...), nil
}

// MutateOps appends mutations of m (selected by UUID or index) to ops.
func MutateOps(c client.Client, ops []ovsdb.Operation, m model.Model, mutations ...model.Mutation) ([]ovsdb.Operation, error) {
	o, err := c.Where(m).Mutate(m, mutations...)
	if err != nil {
		return ops, fmt.Errorf("build mutate: %w", err)
	}
	return append(ops, o...), nil
}

// DeleteOps appends deletes of models (selected by UUID or index) to ops.
func DeleteOps(c client.Client, ops []ovsdb.Operation, models ...model.Model) ([]ovsdb.Operation, error) {
	for _, m := range models {
		o, err := c.Where(m).Delete()
		if err != nil {
			return ops, fmt.Errorf("build delete: %w", err)
		}
		ops = append(ops, o...)
	}
	return ops, nil
}

// ErrNotFound is returned by Lookup when no row matches.
var ErrNotFound = errors.New("row not found")

// Lookup returns the one cached row that matches m by UUID, by a schema index
// or by a client index (e.g. Logical_Switch by name), copied into a new
// value of m's type. It fails with ErrNotFound if none matches and with an
// error if a (non-unique) client index matches several rows.
func Lookup[T model.Model](c *Client, m T) (T, error) {
	var zero T
	table, err := tableOf(c, m)
	if err != nil {
		return zero, err
	}
	rc := c.Cache().Table(table)
	if rc == nil {
		return zero, fmt.Errorf("%s: %w (table not monitored)", table, ErrNotFound)
	}
	rows, err := rc.RowsByModels([]model.Model{m})
	if err != nil {
		return zero, fmt.Errorf("%s lookup: %w", table, err)
	}
	switch len(rows) {
	case 0:
		return zero, fmt.Errorf("%s %s: %w", table, describe(m), ErrNotFound)
	case 1:
		for _, r := range rows {
			out := model.Clone(r)
			return out.(T), nil
		}
	}
	return zero, fmt.Errorf("%s %s: %d rows match; use the UUID", table, describe(m), len(rows))
}

// LookupUUID returns the UUID of the row Lookup finds; a UUID already set in
// *uuid (real or named) is returned as is.
func LookupUUID[T model.Model](c *Client, m T, uuid *string) (string, error) {
	if *uuid != "" {
		return *uuid, nil
	}
	found, err := Lookup(c, m)
	if err != nil {
		return "", err
	}
	return uuidOf(found), nil
}

func tableOf(c *Client, m model.Model) (string, error) {
	for name, typ := range c.Cache().DatabaseModel().Client().Types() {
		if typ == reflect.TypeOf(m) {
			return name, nil
		}
	}
	return "", fmt.Errorf("model %T is not part of the %s database", m, c.Schema().Name)
}

func uuidOf(m model.Model) string {
	v := reflect.ValueOf(m).Elem()
	if f := v.FieldByName("UUID"); f.IsValid() && f.Kind() == reflect.String {
		return f.String()
	}
	return ""
}

func describe(m model.Model) string {
	v := reflect.ValueOf(m).Elem()
	if f := v.FieldByName("Name"); f.IsValid() && f.Kind() == reflect.String && f.String() != "" {
		return strconv.Quote(f.String())
	}
	return fmt.Sprintf("%+v", m)
}
