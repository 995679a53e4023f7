package sbdb

//go:generate go run github.com/ovn-kubernetes/libovsdb/cmd/modelgen -extended -p sbdb -o . sb.ovsschema
