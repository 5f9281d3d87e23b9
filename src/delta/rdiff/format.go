// Package rdiff reads and writes librsync's "rdiff" delta format, the format
// of balenaEngine's binary image deltas.
//
// A delta is the 4-byte big-endian magic 0x72730236 followed by commands,
// each an opcode byte and big-endian arguments:
//
//	0x00        END
//	0x01..0x40  LITERAL of 1..64 bytes; the data follows the opcode
//	0x41..0x44  LITERAL whose length follows in 1, 2, 4 or 8 bytes, then data
//	0x45..0x54  COPY(start, length) from the basis; the widths of start and
//	            length are (1,1), (1,2), (1,4), (1,8), (2,1), ... (8,8)
//	0x55..0xff  reserved
//
// The basis is the old data (for balenaEngine, all base image layer tars
// concatenated), read only through io.ReaderAt so it can be many gigabytes.
// Patch and NewReader apply a delta; Delta makes one, with the rsync
// algorithm librsync uses (aligned basis blocks matched at every target
// offset by a rolling checksum).
package rdiff

import (
	"encoding/binary"
	"errors"
)

// Magic is RS_DELTA_MAGIC, the first four bytes (big-endian) of every delta.
const Magic uint32 = 0x72730236

// Opcodes from librsync's prototab.c.
const (
	opEnd        = 0x00
	opLiteral64  = 0x40 // LITERAL of length 1 is 0x01, up to 64
	opLiteralN1  = 0x41 // LITERAL with a 1-byte length; up to opLiteralN8
	opLiteralN8  = 0x44
	opCopyN1N1   = 0x45 // COPY with 1-byte start and length; up to opCopyN8N8
	opCopyN8N8   = 0x54
	maxCmdHeader = 1 + 8 + 8
)

// ErrCorrupt is wrapped by every error that blames the delta's content rather
// than the reading or writing of it.
var ErrCorrupt = errors.New("rdiff: corrupt delta")

// widthCode maps an argument width in bytes to its index in an opcode row.
var widthCode = [9]byte{1: 0, 2: 1, 4: 2, 8: 3}

// codeWidth is the inverse of widthCode.
var codeWidth = [4]int{1, 2, 4, 8}

// intLen is the narrowest of librsync's argument widths (1, 2, 4 or 8 bytes)
// that holds v, as librsync's rs_int_len picks it.
func intLen(v uint64) int {
	switch {
	case v <= 0xff:
		return 1
	case v <= 0xffff:
		return 2
	case v <= 0xffffffff:
		return 4
	}
	return 8
}

// putInt writes v big-endian in width bytes.
func putInt(b []byte, v uint64, width int) {
	var tmp [8]byte
	binary.BigEndian.PutUint64(tmp[:], v)
	copy(b, tmp[8-width:])
}

// getInt reads a big-endian integer of len(b) bytes.
func getInt(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// appendLiteralCmd appends the header of a LITERAL of n bytes (n > 0) in
// its smallest encoding: the length in the opcode up to 64 bytes, else the
// narrowest length argument.
func appendLiteralCmd(b []byte, n int64) []byte {
	if n <= opLiteral64 {
		return append(b, byte(n))
	}
	w := intLen(uint64(n))
	b = append(b, opLiteralN1+widthCode[w])
	var tmp [8]byte
	putInt(tmp[:w], uint64(n), w)
	return append(b, tmp[:w]...)
}

// appendCopyCmd appends a COPY of n bytes from basis offset start, both
// arguments in their narrowest width.
func appendCopyCmd(b []byte, start, n int64) []byte {
	ws, wn := intLen(uint64(start)), intLen(uint64(n))
	b = append(b, opCopyN1N1+4*widthCode[ws]+widthCode[wn])
	var tmp [16]byte
	putInt(tmp[:ws], uint64(start), ws)
	putInt(tmp[ws:ws+wn], uint64(n), wn)
	return append(b, tmp[:ws+wn]...)
}

// opArgs gives the argument widths of opcode op: for a LITERAL with its
// length in the opcode, imm is that length; ok is false for reserved opcodes.
func opArgs(op byte) (kind cmdKind, imm int64, w1, w2 int, ok bool) {
	switch {
	case op == opEnd:
		return cmdEnd, 0, 0, 0, true
	case op <= opLiteral64:
		return cmdLiteral, int64(op), 0, 0, true
	case op <= opLiteralN8:
		return cmdLiteral, 0, codeWidth[op-opLiteralN1], 0, true
	case op <= opCopyN8N8:
		c := op - opCopyN1N1
		return cmdCopy, 0, codeWidth[c/4], codeWidth[c%4], true
	}
	return 0, 0, 0, 0, false
}

type cmdKind uint8

const (
	cmdEnd cmdKind = iota
	cmdLiteral
	cmdCopy
)
