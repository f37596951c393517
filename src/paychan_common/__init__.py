"""paychan_common: the pure protocol core (Bitcoin primitives, channel rules, wire codecs, errors)."""
