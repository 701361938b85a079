"""Journal schema revisions."""
