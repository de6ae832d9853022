package api

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/fluxstudio/fluxauth"
)

// Every string field of a request body declares its bound in a `check` tag, and decodeJSON enforces
// them all before a handler sees the body. The rules behind the handlers key rate-limiter state,
// events and rows on these values, so none of them may arrive with a length of the client's choosing
// (150 logins with 58 KB emails once held 50 MB of limiter keys).
//
//	check:"text,N"    stored, logged or shown: at most N bytes, and no control characters (PostgreSQL
//	                  refuses NUL, and logs and the dashboard render the others badly)
//	check:"secret,N"  a password or a token, which is only hashed or compared: at most N bytes of
//	                  anything
//
// A string field without a tag is a programming error: decoding its type panics (500 internal), so
// the first test of its endpoint fails.
//
// The JSON decoder has already replaced invalid UTF-8 with U+FFFD, so every value is valid UTF-8.

// fieldCheck is one string field's bound.
type fieldCheck struct {
	index  int
	name   string // the JSON name, as the client sees it in the error
	max    int
	secret bool
}

var fieldChecks sync.Map // reflect.Type → []fieldCheck

// checksOf returns the bounds of struct type t's string fields, parsed once per type.
func checksOf(t reflect.Type) []fieldCheck {
	if c, ok := fieldChecks.Load(t); ok {
		return c.([]fieldCheck)
	}
	var checks []fieldCheck
	for i := range t.NumField() {
		f := t.Field(i)
		switch f.Type.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
			continue // bounded by their type
		case reflect.String:
		default:
			panic(fmt.Sprintf("api: request field %s.%s is a %s: bodies hold strings, numbers and booleans only", t.Name(), f.Name, f.Type))
		}
		kind, n, _ := strings.Cut(f.Tag.Get("check"), ",")
		max, err := strconv.Atoi(n)
		if (kind != "text" && kind != "secret") || err != nil || max <= 0 {
			panic(fmt.Sprintf(`api: request field %s.%s needs a check tag: check:"text,N" or check:"secret,N"`, t.Name(), f.Name))
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		checks = append(checks, fieldCheck{index: i, name: name, max: max, secret: kind == "secret"})
	}
	fieldChecks.Store(t, checks)
	return checks
}

// checkFields enforces the check tags of the struct v points to, reporting every bad field at once
// as validation_failed. It never echoes a value.
func checkFields(v any) error {
	rv := reflect.ValueOf(v).Elem()
	var problems fluxauth.ValidationError
	for _, c := range checksOf(rv.Type()) {
		s := rv.Field(c.index).String()
		switch {
		case len(s) > c.max:
			problems.Add(c.name, fmt.Sprintf("must be at most %d bytes", c.max))
		case !c.secret && strings.IndexFunc(s, fluxauth.UnsafeRune) >= 0:
			problems.Add(c.name, "must not contain control or bidirectional formatting characters")
		}
	}
	return problems.Err()
}
