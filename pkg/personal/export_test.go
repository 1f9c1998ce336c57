package personal

import "time"

// SetClock replaces the keyring's clock, so that tests move past the cache
// TTL without sleeping.
func SetClock(k *Keyring, now func() time.Time) { k.now = now }
