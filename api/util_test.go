package api_test

import (
	"io"
	"net/http"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func readAll(tb testing.TB, res *http.Response) string {
	tb.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func bcryptHash(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	return string(h)
}

// flipChar returns a base64url character other than c, for garbling a token in one place.
func flipChar(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
