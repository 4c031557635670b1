"""Unit tests of port443.proxy."""
