package netpoll

// Token packs a connection slot and its generation into epoll data. The
// loop bumps a slot's generation each time the slot is reused, so an event
// queued for the slot's previous fd carries an old generation and can be
// dropped. Token(math.MaxUint32, math.MaxUint32) is reserved (see Add).
func Token(slot uint32, gen uint32) uint64 {
	return uint64(gen)<<32 | uint64(slot)
}

// SplitToken is the inverse of Token.
func SplitToken(tok uint64) (slot, gen uint32) {
	return uint32(tok), uint32(tok >> 32)
}
