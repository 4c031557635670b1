"""port443's shipped rulesets. A Python package only so that wheels carry the YAML files; there is no code here."""
