"""Framework adapters. Each submodule imports its framework and says which extra to install."""
