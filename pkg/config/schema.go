package config

import (
	"reflect"

	"github.com/BurntSushi/toml"
)

// schemaLookup follows key through the raw types' toml tags and returns the
// Go type of the field it names. When a part is missing from the schema, at
// is its index and known lists the keys its table does have; otherwise at
// is -1. field is nil when key goes below a value (a table given where a
// string belongs): that is the value's setting's to report.
func schemaLookup(key toml.Key) (field reflect.Type, at int, known []string) {
	t := reflect.TypeFor[rawConfig]()
	for i, name := range key {
		table := tableType(t)
		if table == nil {
			return nil, -1, nil
		}
		f, ok := fieldByKey(table, name)
		if !ok {
			return nil, i, schemaKeys(table)
		}
		t = f.Type
	}
	return t, -1, nil
}

// tableType returns the struct that a field of type t decodes a TOML table
// into, or nil when t holds a value (a setting).
func tableType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

var unmarshalerType = reflect.TypeFor[toml.Unmarshaler]()

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("toml") == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func schemaKeys(t reflect.Type) []string {
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = t.Field(i).Tag.Get("toml")
	}
	return keys
}
