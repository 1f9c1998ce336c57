package cql

// TokenRanges splits the Murmur3 token ring into n contiguous inclusive
// ranges, for scans that read a table range by range
// (WHERE token(pk) >= ? AND token(pk) <= ?).
func TokenRanges(n int) [][2]int64 {
	const minToken, maxToken = -1 << 63, 1<<63 - 1
	step := uint64(maxToken)/uint64(n)*2 + 1
	out := make([][2]int64, 0, n)
	start := int64(minToken)
	for i := range n {
		end := int64(uint64(start) + step - 1)
		if i == n-1 || end < start {
			end = maxToken
		}
		out = append(out, [2]int64{start, end})
		if end == maxToken {
			break
		}
		start = end + 1
	}
	return out
}
