"""Entry point for `mitmdump -s addon/port443_mitm.py` and `mitmweb -s ...`: no logic here."""

from port443.mitm.addons import make_addons

addons = make_addons()
