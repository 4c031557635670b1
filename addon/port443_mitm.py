"""Entry point for `mitmdump -s addon/port443_mitm.py` and `mitmweb -s ...`: no logic here."""

from port443.addon import addons as _addons

addons = _addons()
