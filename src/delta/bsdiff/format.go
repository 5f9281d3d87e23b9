// Package bsdiff makes and applies binary patches with Colin Percival's
// bsdiff algorithm ("Naïve differences of executable code", 2003), in a
// container of our own that can be applied from a stream in bounded memory.
//
// Diff finds, for the new data, approximate matches in the old data: regions
// where most bytes agree, as in two builds of a program whose addresses
// moved. Each region becomes a run of bytewise differences (new minus old,
// mostly zeros), and what lies between regions becomes literal "extra"
// bytes. The differences, the extras and the control triples saying how
// to interleave them go into three separate zstd streams, which is what
// makes the patch small: each stream compresses far better alone than mixed
// with the others (on edited text, to half the size).
//
// # Format
//
// A patch is, with uvarint and varint as in encoding/binary (varint is
// zigzag-encoded):
//
//	magic    "BSDZ"
//	version  0x01
//	newSize  uvarint: the length of the new data
//	packets  any number of: stream (1 byte: 0 control, 1 diff, 2 extra),
//	         length (uvarint, 1 to 65536), then length bytes
//	end      0x03, and then the end of the patch: nothing may follow
//
// Concatenating the payloads of one stream's packets, in order, gives that
// stream: zero or more zstd frames (RFC 8878) whose windows are at most
// 256 KiB (a stream without packets is empty). Diff writes one frame per
// stream, stating its content size and with a checksum. The streams
// decompress to:
//
//	control  triples of seek (varint), diffLen (uvarint), extraLen (uvarint)
//	diff     for each triple, diffLen bytes
//	extra    for each triple, extraLen bytes
//
// Applying starts with an old position of 0 and empty output. For each
// triple: the old position moves by seek; the next diffLen bytes of output
// are the old bytes from there plus the next diffLen diff bytes (mod 256),
// and the old position moves past them; then the next extraLen extra bytes
// are copied to the output. A triple must produce at least one byte, read
// only within the old data, and bring the output to no more than newSize
// bytes. The triples produce exactly newSize bytes, and each stream ends
// where the last triple leaves it.
//
// The packets interleave the streams so that all three can be decompressed
// together from a patch read once, in order. A reader reads the next packet
// whenever a stream's decompressor needs more input; packets it meets for
// the other streams wait until those need them, and Patch fails a patch
// that makes more than 256 KiB of packet data wait. Diff flushes each
// stream into pieces of at most one packet and puts each piece just before
// the first triple that needs it (control, then diff, then extra, among
// pieces first needed by the same triple), so that nothing waits but the
// unread rest of the packet each stream is reading.
package bsdiff

import (
	"errors"
	"math"
)

// The container's fixed parts.
const (
	magic   = "BSDZ"
	version = 1
	tagEnd  = 3
)

// The three streams, numbered as in the packets.
const (
	streamCtrl = iota
	streamDiff
	streamExtra
	numStreams
)

var streamNames = [numStreams]string{"control", "diff", "extra"}

const (
	// maxPacket bounds a packet's payload. Diff makes each flushed piece
	// of a stream fit in one, so that what Patch keeps of the packets it
	// read is at most a packet per stream: 3·maxPacket, under maxQueued.
	maxPacket = 64 << 10

	// maxQueued bounds the packet bytes Patch keeps that were read but
	// not yet decompressed.
	maxQueued = 256 << 10

	// maxWindow is the largest zstd window a stream may use. Each of the
	// three decoders keeps a window of history; bsdiff's streams gain
	// nothing from more (measured on Go binaries and edited text: 1 MiB
	// and 8 MiB windows made patches no smaller).
	maxWindow = 256 << 10

	// maxInput bounds old and new for Diff: the suffix array holds int32s.
	maxInput = math.MaxInt32
)

// ErrCorrupt is wrapped by every error that blames the patch's content
// rather than the reading of it or the writing of the output.
var ErrCorrupt = errors.New("bsdiff: corrupt patch")
