package activities

import (
	"reflect"
	"sync"

	"github.com/secure-agent/secure-agent/connectors"
	"github.com/secure-agent/secure-agent/secrets"
)

// redactEntity returns e with every occurrence of a guarded value, in every string it holds
// (fields, and the items of string slices, in nested structs too), replaced by [REDACTED], and
// how many it replaced. e itself is not changed: an entity with nothing to redact is returned
// as it is, any other is a copy. m is g's Matcher: a read-only pass with it decides, without
// allocating, whether there is anything to redact (nearly never), before any copy is made.
func redactEntity(e connectors.Entity, g *secrets.Guard, m secrets.Matcher) (connectors.Entity, int) {
	if m.Empty() {
		return e, 0
	}
	v := reflect.ValueOf(e)
	if v.Kind() != reflect.Struct || !holds(v, m) {
		return e, 0 // the entity model is made of structs; anything else is passed on as it is
	}
	cp := reflect.New(v.Type()).Elem()
	cp.Set(v)
	n := redactValue(cp, g)
	if n == 0 {
		return e, 0
	}
	return cp.Interface().(connectors.Entity), n
}

// withSource returns e with its Source field set to source (a copy; e is not changed), or e
// itself when source is empty or e has no such field.
func withSource(e connectors.Entity, source string) connectors.Entity {
	if source == "" {
		return e
	}
	v := reflect.ValueOf(e)
	if v.Kind() != reflect.Struct {
		return e
	}
	cp := reflect.New(v.Type()).Elem()
	cp.Set(v)
	f := cp.FieldByName("Source")
	if !f.IsValid() || f.Kind() != reflect.String {
		return e
	}
	f.SetString(source)
	return cp.Interface().(connectors.Entity)
}

// skipped reports whether field i of struct type t is left out of redaction (tag redact:"-"):
// the agent's own or the starter's text, never the source's. Every entity passes here once per
// field, so the tags are read once per type (skippedFields).
func skipped(t reflect.Type, i int) bool { return skippedFields(t)[i] }

// skippedByType caches, per struct type, which fields are tagged redact:"-".
var skippedByType sync.Map // reflect.Type -> []bool

func skippedFields(t reflect.Type) []bool {
	if s, ok := skippedByType.Load(t); ok {
		return s.([]bool)
	}
	s := make([]bool, t.NumField())
	for i := range s {
		s[i] = t.Field(i).Tag.Get("redact") == "-"
	}
	skippedByType.Store(t, s)
	return s
}

// holds reports whether a string reachable from v holds a guarded value.
func holds(v reflect.Value, m secrets.Matcher) bool {
	switch v.Kind() {
	case reflect.String:
		return m.In(v.String())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !skipped(v.Type(), i) && holds(v.Field(i), m) {
				return true
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if holds(v.Index(i), m) {
				return true
			}
		}
	case reflect.Pointer:
		return !v.IsNil() && holds(v.Elem(), m)
	}
	return false
}

// redactValue redacts the strings reachable from the settable value v, copying slices before
// changing them (their arrays may be shared with the original).
func redactValue(v reflect.Value, g *secrets.Guard) int {
	switch v.Kind() {
	case reflect.String:
		s, n := g.Redact(v.String())
		if n > 0 {
			v.SetString(s)
		}
		return n
	case reflect.Struct:
		n := 0
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() && !skipped(v.Type(), i) {
				n += redactValue(f, g)
			}
		}
		return n
	case reflect.Slice:
		if v.Len() == 0 {
			return 0
		}
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(cp, v)
		n := 0
		for i := 0; i < cp.Len(); i++ {
			n += redactValue(cp.Index(i), g)
		}
		if n > 0 {
			v.Set(cp)
		}
		return n
	case reflect.Pointer:
		if v.IsNil() || v.Elem().Kind() != reflect.String && v.Elem().Kind() != reflect.Struct {
			return 0
		}
		cp := reflect.New(v.Elem().Type())
		cp.Elem().Set(v.Elem())
		n := redactValue(cp.Elem(), g)
		if n > 0 {
			v.Set(cp)
		}
		return n
	}
	return 0
}
