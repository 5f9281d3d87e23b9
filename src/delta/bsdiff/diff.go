package bsdiff

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// Diff returns a patch that turns old into new.
//
// It works in memory, on inputs the caller keeps to a bounded size (a few
// MiB; old may be at most 2 GiB - 1 bytes): besides old and new, its live
// heap peaks at about 8.5 bytes per byte of old, for old's index (the
// suffix array and a 4-byte key for each suffix, or the suffix array twice
// while it is taken from index/suffixarray), and later holds the
// uncompressed streams (a byte per byte of new, plus the control triples)
// and the patch. The zstd encoders it needs, about 37 MiB (mostly the
// tables of the best level), are made once and kept for later calls; a
// few more are made while calls run concurrently.
func Diff(old, new []byte) ([]byte, error) {
	ix, err := newIndex(old)
	if err != nil {
		return nil, err
	}
	regions := scan(ix, new)
	ctrl, diff, extra, ends := streams(old, new, regions)
	if testHookMem != nil {
		testHookMem()
	}

	// Compress each stream in pieces, and give each piece the index of the
	// triple at which Patch first reads from it.
	type packet struct {
		need, stream int
		data         []byte
	}
	var packets []packet
	for s, data := range [numStreams][]byte{ctrl, diff, extra} {
		pieces, err := compress(data)
		if err != nil {
			return nil, fmt.Errorf("bsdiff: compressing the %s stream: %w", streamNames[s], err)
		}
		i := 0
		for _, p := range pieces {
			for i < len(regions) && ends[s][i] <= p.start {
				i++
			}
			packets = append(packets, packet{need: i, stream: s, data: p.data})
		}
	}
	// Stable, so each stream's pieces stay in order.
	slices.SortStableFunc(packets, func(a, b packet) int {
		if a.need != b.need {
			return a.need - b.need
		}
		return a.stream - b.stream
	})

	if testHookMem != nil {
		testHookMem()
	}
	size := len(magic) + 1 + binary.MaxVarintLen64 + 1
	for _, p := range packets {
		size += (len(p.data)/maxPacket + 1) * (1 + binary.MaxVarintLen32)
		size += len(p.data)
	}
	out := make([]byte, 0, size)
	out = append(out, magic...)
	out = append(out, version)
	out = binary.AppendUvarint(out, uint64(len(new)))
	for _, p := range packets {
		for d := p.data; len(d) > 0; {
			n := min(len(d), maxPacket)
			out = append(out, byte(p.stream))
			out = binary.AppendUvarint(out, uint64(n))
			out = append(out, d[:n]...)
			d = d[n:]
		}
	}
	out = append(out, tagEnd)
	if testHookMem != nil {
		testHookMem()
	}
	return out, nil
}

// streams makes the three streams from the regions, and says where in each
// the needs of each triple end.
func streams(old, new []byte, regions []region) (ctrl, diff, extra []byte, ends [numStreams][]int) {
	var diffLen, extraLen int
	for _, r := range regions {
		diffLen += r.diffLen
		extraLen += r.extraLen
	}
	ctrl = make([]byte, 0, 4*len(regions))
	diff = make([]byte, 0, diffLen)
	extra = make([]byte, 0, extraLen)
	for s := range ends {
		ends[s] = make([]int, len(regions))
	}
	oldEnd := 0 // where the last diff ended in old: seeks start there
	for i, r := range regions {
		var seek int
		if r.diffLen > 0 {
			seek, oldEnd = r.pos-oldEnd, r.pos+r.diffLen
		}
		ctrl = binary.AppendVarint(ctrl, int64(seek))
		ctrl = binary.AppendUvarint(ctrl, uint64(r.diffLen))
		ctrl = binary.AppendUvarint(ctrl, uint64(r.extraLen))
		for j := range r.diffLen {
			diff = append(diff, new[r.at+j]-old[r.pos+j])
		}
		extra = append(extra, new[r.at+r.diffLen:][:r.extraLen]...)
		ends[streamCtrl][i], ends[streamDiff][i], ends[streamExtra][i] = len(ctrl), len(diff), len(extra)
	}
	return ctrl, diff, extra, ends
}

// testHookMem, when set by tests, is called where Diff's memory use peaks.
var testHookMem func()

// piece is compressed data that, following the pieces before it, decodes to
// the stream from offset start on.
type piece struct {
	start int
	data  []byte
}

// compress compresses data into one zstd frame, flushed into pieces that
// each decode without the ones after it and fit in a packet. Empty data
// gives no pieces at all.
//
// Every flush ends a zstd block and costs some bytes (tens, for a block of
// mostly zero diff bytes), so pieces are made as long as fits: a first pass
// with a fast encoder estimates how each estChunk bytes compress, and
// flushes come where that estimate reaches half a packet. Should a piece
// come out longer than a packet all the same, the stream is compressed
// again with a flush every estChunk bytes, which always fits.
func compress(data []byte) ([]piece, error) {
	if len(data) == 0 {
		return nil, nil
	}
	est, err := compressFlushed(data, zstd.SpeedFastest, everyChunk(len(data)))
	if err != nil {
		return nil, err
	}
	var cuts []int // where pieces start, after the first
	sum := 0
	for _, p := range est[:len(est)-1] { // the last is the frame's end
		if sum > 0 && sum+len(p.data) > maxPacket/2 {
			cuts = append(cuts, p.start)
			sum = 0
		}
		sum += len(p.data)
	}
	pieces, err := compressFlushed(data, zstd.SpeedBestCompression, cuts)
	if err != nil {
		return nil, err
	}
	for _, p := range pieces {
		if len(p.data) > maxPacket {
			return compressFlushed(data, zstd.SpeedBestCompression, everyChunk(len(data)))
		}
	}
	return pieces, nil
}

// estChunk is the unit of compress's estimates and its finest flushes.
const estChunk = 16 << 10

// everyChunk is the cuts of data of length n into estChunk bytes.
func everyChunk(n int) []int {
	var cuts []int
	for c := estChunk; c < n; c += estChunk {
		cuts = append(cuts, c)
	}
	return cuts
}

// compressFlushed compresses data with a flush before each offset in cuts
// (increasing, within data) and at the end. The last piece is the end of
// the frame. The frame states data's size, and so has a window no larger
// than data needs: decoding a small stream takes little memory.
func compressFlushed(data []byte, level zstd.EncoderLevel, cuts []int) ([]piece, error) {
	enc, err := getEncoder(level)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc.ResetContentSize(&buf, int64(len(data)))
	pieces := make([]piece, 0, len(cuts)+2)
	take := func(start int) {
		pieces = append(pieces, piece{start: start, data: bytes.Clone(buf.Bytes())})
		buf.Reset()
	}
	start := 0
	for _, end := range append(cuts, len(data)) {
		if _, err := enc.Write(data[start:end]); err != nil {
			return nil, err
		}
		if err := enc.Flush(); err != nil {
			return nil, err
		}
		take(start)
		start = end
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	take(len(data))
	putEncoder(level, enc)
	return pieces, nil
}

// encoders keeps a few zstd encoders for reuse, by level. Making one
// allocates its tables, 34 MiB at the best level: far more work than a
// small file's Diff otherwise does. A sync.Pool would drop them at every
// collection, and Diff allocates enough to make those frequent.
var encoders = map[zstd.EncoderLevel]chan *zstd.Encoder{
	zstd.SpeedFastest:         make(chan *zstd.Encoder, 2),
	zstd.SpeedBestCompression: make(chan *zstd.Encoder, 2),
}

func getEncoder(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	select {
	case enc := <-encoders[level]:
		return enc, nil
	default:
	}
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithWindowSize(maxWindow),
		zstd.WithEncoderConcurrency(1))
}

func putEncoder(level zstd.EncoderLevel, enc *zstd.Encoder) {
	select {
	case encoders[level] <- enc:
	default: // enough kept
	}
}
