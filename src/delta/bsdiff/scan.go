package bsdiff

import "runtime"

// region is a control triple in the making: new[at:at+diffLen] is to be
// made from old[pos:pos+diffLen] plus diff bytes, and the extraLen bytes of
// new after it are extra bytes. Regions are kept as offsets, not bytes, so
// that the streams are made, at their exact sizes, only once the index is
// no longer needed.
type region struct {
	at, pos           int
	diffLen, extraLen int
}

// minGain is how many more matching bytes a new alignment must offer over
// the current one before the scan switches to it (bsdiff's constant 8):
// switching costs a control triple, and the current alignment often goes
// on matching after a few changed bytes, as in code whose addresses moved.
const minGain = 8

// skipMin is the match length from which the scan skips ahead rather than
// stepping through a near-match (see scan).
const skipMin = 64

// scan is bsdiff's search for an edit script from old to new. At each
// position of new it looks up the longest exact match in old; it accepts a
// match only if it clearly beats the alignment in use (the old offset of
// the previous match), counting bytes that merely agree on that alignment,
// so runs of small differences stay in one diff region instead of breaking
// into many exact matches. Each accepted match is then stretched forward
// from the previous one and backward from itself as far as more than half
// the bytes agree; the bytes between the two stretches become extra bytes.
//
// The regions it returns cover new from start to end, in order.
func scan(ix *index, new []byte) []region {
	old := ix.old
	var regions []region
	var (
		rank, length int // the current match: its suffix's rank, how long
		pos          int // where it is in old, once needed
		at           int // where in new the scan is
		lastAt       int // where in new the previous region ended
		lastPos      int // where in old it ended
		lastOffset   int // lastPos - lastAt: the alignment in use
	)
	// agrees tells whether new[i] matches old under the alignment in use.
	agrees := func(i int) bool {
		j := i + lastOffset
		return j >= 0 && j < len(old) && old[j] == new[i]
	}
	for at < len(new) {
		oldScore := 0 // of the bytes new[at:scored], how many agree
		at += length
		scored := at
		for ; at < len(new); at++ {
			rank, length = ix.longestMatch(new[at:])
			for ; scored < at+length; scored++ {
				if agrees(scored) {
					oldScore++
				}
			}
			if (length == oldScore && length != 0) || length > oldScore+minGain {
				break
			}
			// Not worth a switch: step past at. When the match is long and
			// the alignment in use disagrees with it in a few places (as it
			// does for near-copies within old), bsdiff steps a byte at a
			// time up to the last of them, searching at every byte at a
			// cost of the match's length: quadratic. Jump there instead.
			last := at
			if length >= skipMin && length > oldScore && scored == at+length {
				for last = at + length - 1; agrees(last); last-- {
				}
			}
			for ; at < last; at++ {
				if agrees(at) {
					oldScore--
				}
			}
			if agrees(at) {
				oldScore--
			}
		}
		if len(ix.sa) > 0 {
			pos = int(ix.sa[rank])
		}
		if length == oldScore && at != len(new) {
			// The match is the alignment in use, carried on: no new region.
			continue
		}

		// Stretch forward from the previous region: the length lenF with
		// the best margin of agreeing over disagreeing bytes.
		lenF, best := 0, 0
		for i, s := 0, 0; lastAt+i < at && lastPos+i < len(old); {
			if old[lastPos+i] == new[lastAt+i] {
				s++
			}
			i++
			if 2*s-i > 2*best-lenF {
				best, lenF = s, i
			}
		}
		// Stretch backward from the new match, likewise.
		lenB := 0
		if at < len(new) {
			best = 0
			for i, s := 1, 0; at >= lastAt+i && pos >= i; i++ {
				if old[pos-i] == new[at-i] {
					s++
				}
				if 2*s-i > 2*best-lenB {
					best, lenB = s, i
				}
			}
		}
		// Where the stretches overlap, split them where the forward one
		// scores best against the backward one.
		if overlap := lastAt + lenF - (at - lenB); overlap > 0 {
			s, best, split := 0, 0, 0
			for i := range overlap {
				if new[lastAt+lenF-overlap+i] == old[lastPos+lenF-overlap+i] {
					s++
				}
				if new[at-lenB+i] == old[pos-lenB+i] {
					s--
				}
				if s > best {
					best, split = s, i+1
				}
			}
			lenF += split - overlap
			lenB -= split
		}

		switch extraLen := at - lenB - (lastAt + lenF); {
		case lenF == 0 && extraLen == 0:
		case lenF == 0 && len(regions) > 0:
			// Extra bytes alone continue the previous region's.
			regions[len(regions)-1].extraLen += extraLen
		default:
			regions = append(regions, region{at: lastAt, pos: lastPos, diffLen: lenF, extraLen: extraLen})
		}
		lastAt, lastPos = at-lenB, pos-lenB
		lastOffset = pos - at
	}
	if testHookMem != nil {
		testHookMem()
		runtime.KeepAlive(ix) // as it is until the last search
	}
	return regions
}
