"""A small v2-model app for the devhost tests (served by devhost, never deployed)."""
