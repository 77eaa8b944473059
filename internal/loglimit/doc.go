// Package loglimit holds back repeats of a log line: a kind of line is let
// through at most once per interval, and the next one it lets through says
// how many it held back. A line that something outside the process can
// repeat at will (a storage error retried in a loop, a connection refused
// at once) so costs the log one line per interval and kind, not one per
// repeat.
package loglimit
