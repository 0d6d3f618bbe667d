package secrets

import (
	"container/list"
	"sync"
	"time"
)

// cache is a bounded, TTL-limited, least-recently-used store of fetched secrets. It hands out
// copies and zeroes its own copy of a value when the entry expires, is evicted or is purged.
type cache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	order   *list.List // front = most recently used; elements hold *cacheEntry
	entries map[string]*list.Element
}

type cacheEntry struct {
	key     string
	secret  Secret
	expires time.Time
}

func newCache(ttl time.Duration, max int, now func() time.Time) *cache {
	return &cache{ttl: ttl, max: max, now: now, order: list.New(), entries: make(map[string]*list.Element)}
}

// get returns a copy of the cached secret, or nil if there is none or it has expired.
func (c *cache) get(key string) *Secret {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.remove(el)
		return nil
	}
	c.order.MoveToFront(el)
	return copySecret(&e.secret)
}

// put stores a copy of s, evicting the least recently used entry when full.
func (c *cache) put(key string, s *Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.remove(el)
	}
	e := &cacheEntry{key: key, secret: *copySecret(s), expires: c.now().Add(c.ttl)}
	c.entries[key] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		c.remove(c.order.Back())
	}
}

// purge zeroes and drops every entry, and every expired one when expiredOnly is set.
func (c *cache) purge(expiredOnly bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for el := c.order.Back(); el != nil; {
		prev := el.Prev()
		if e := el.Value.(*cacheEntry); !expiredOnly || !now.Before(e.expires) {
			c.remove(el)
		}
		el = prev
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// remove zeroes and drops one entry. c.mu must be held.
func (c *cache) remove(el *list.Element) {
	e := c.order.Remove(el).(*cacheEntry)
	delete(c.entries, e.key)
	e.secret.Zero()
}

func copySecret(s *Secret) *Secret {
	c := &Secret{Value: append(Value(nil), s.Value...), Version: s.Version}
	if s.Lease != nil {
		l := *s.Lease
		c.Lease = &l
	}
	return c
}
