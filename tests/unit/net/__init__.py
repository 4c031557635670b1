"""Unit tests of port443.net."""
