#!/usr/bin/env python3
"""Generate the built-in voice prompts (`make prompts`): appliance/prompts/generate.py."""

from appliance.prompts.generate import main

if __name__ == "__main__":
    raise SystemExit(main())
