"""Test support for pulse-local and for users' own repositories (a pytest plugin)."""
