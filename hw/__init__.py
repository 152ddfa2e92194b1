"""Hardware: GSM modems, GPIO LEDs and buttons, discovery (filled by the lines and box issues)."""
