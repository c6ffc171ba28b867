"""What a profile may be called: its name is free text, but it is part of its
database's file name (data/perps_bot.<profile>.sqlite) and of its run ids (the
`--http-port` dashboard escapes them in its URLs): no path separator, no control
character, and short enough for a file name."""

import re
from typing import Annotated

from pydantic import AfterValidator

from perps_bot.domain import short

_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")
#: bytes: "perps_bot.<name>.sqlite-journal" stays within a file name's 255
_MAX_BYTES = 200


def _profile_name(value: str) -> str:
    if not value.strip() or _UNSAFE.search(value) or len(value.encode()) > _MAX_BYTES:
        raise ValueError(
            f"{short(repr(value))} is no profile name: it names the database file and the"
            f" run ids (no '/', '\\', control character; at most {_MAX_BYTES} bytes; a"
            " profile file without a profile: line is named by its file name)"
        )
    return value


#: a profile's name, refused when it cannot be part of a file name
ProfileName = Annotated[str, AfterValidator(_profile_name)]
