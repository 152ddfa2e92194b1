"""Office PBX appliance: the engine daemon, routing and storage."""
