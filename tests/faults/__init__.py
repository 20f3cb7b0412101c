"""Fault tests over real HTTP, one file per suite: crash, race, storm, hostile callers."""
