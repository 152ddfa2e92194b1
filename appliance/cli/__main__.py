"""`python -m appliance.cli`: the `pbx` command."""

from . import main

raise SystemExit(main())
