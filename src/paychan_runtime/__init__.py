"""Service runtime shared by the three processes: aiohttp plumbing, config loading, internal auth."""
