//go:build !race

package api_test

// raceDetector is true when the tests run with -race, which slows some of them tenfold.
const raceDetector = false
