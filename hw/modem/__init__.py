"""GSM/LTE modems: the AT layer (framing, parsers, command engine), profiles, modem state."""
