"""Unit tests of port443.check."""
