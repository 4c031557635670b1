"""Unit tests of port443.mitm."""
