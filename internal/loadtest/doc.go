// Package loadtest owns fluxload's engine: the loopback-only HTTP client, the setup phase that
// signs simulated users up through the API, the request scenarios (refresh chains, /me, login,
// signup, a mix) driven open-loop by vegeta, the rate search behind -find-max, the open-connections
// test, and the summary every run is reported with.
//
// Tokens and passwords live only in memory: nothing in this package prints, logs or stores them.
package loadtest
