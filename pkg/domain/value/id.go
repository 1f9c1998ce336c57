package value

// IsUUID reports whether s is a UUID in canonical text form: 36 characters,
// lower-case hex digits grouped 8-4-4-4-12. Upper-case, braces, "urn:uuid:"
// and hyphen-less forms are refused rather than normalised, because ids are
// partition keys and two spellings of one id would be two aggregates. The nil
// UUID is refused too: it is what an unset id looks like.
func IsUUID(s string) bool {
	if len(s) != 36 || s == "00000000-0000-0000-0000-000000000000" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isASCIIDigit(c) && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
