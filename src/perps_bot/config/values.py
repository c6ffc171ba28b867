"""How a strategy parameter's text becomes its value (`--param`, `--space ...:choice`):
kept in config so every layer that reads parameters from text reads them alike."""

ParamValue = bool | int | float | str


def parse_param_value(text: str) -> ParamValue:
    """`true/false` -> bool, integers -> int, decimals -> float, anything else stays text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
