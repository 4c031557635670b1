"""Unit tests of port443.engine."""
