"""Unit tests of port443.cli."""
