"""Which reader a data file takes, by its name's suffix: one table for the readers
(feeds.readers) and the read-ahead (feeds.prefetch), light to import (no numpy, no
Arrow: the read-ahead decides before they load)."""

#: the suffixes of each data format, lower case
FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv", ".csv.gz"),
    "feather": (".feather", ".arrow", ".ftr"),
    "json": (".json", ".json.gz"),
}
SUFFIXES = tuple(suffix for suffixes in FORMATS.values() for suffix in suffixes)


def format_of(name: str) -> str | None:
    """'csv', 'feather' or 'json' for a file name, None for any other suffix."""
    lower = name.lower()
    return next((fmt for fmt, suffixes in FORMATS.items() if lower.endswith(suffixes)), None)
