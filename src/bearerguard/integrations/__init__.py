"""Framework helpers: each submodule imports its framework and needs the matching extra."""
