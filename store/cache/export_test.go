package cache

// Dump returns copies of the cached sessions' stored fields, for the
// conformance suite's proof that no token reaches storage.
func (c *Cache) Dump() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	for _, e := range c.entries {
		s := e.sess
		out = append(out, s.Hash[:], []byte(s.Principal), s.Data, []byte(s.LastIP), []byte(s.UserAgent))
	}
	return out
}
