"""Where a profile comes from: a path to a YAML file, else NAME.yaml in the local
profiles folder (./config/profiles, relative to the working directory: it overrides
the built-in profile of that name), else the built-in profile NAME shipped inside the
package (so the command works from any folder). A profile chosen by name must not say
another name inside: the name picks the database and the prod promotion gate.
"""

from importlib import resources
from pathlib import Path
from typing import Any

from perps_bot.config.errors import ConfigError
from perps_bot.config.profile_yaml import ProfileError, load_profile_file
from perps_bot.domain import short, short_path

#: A profile here (relative to the working directory) overrides the built-in one.
PROFILES_DIR = Path("config/profiles")
#: The built-in profiles ship inside the package, so the command works from any folder.
BUILTIN_PROFILES = "perps_bot.config.profiles"


def _builtin_profiles() -> Path:
    return Path(str(resources.files(BUILTIN_PROFILES)))


def known_profiles(profiles_dir: Path | None = None) -> list[str]:
    """Names of the built-in profiles and of those in the local profiles folder."""
    folders = [_builtin_profiles(), profiles_dir if profiles_dir is not None else PROFILES_DIR]
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})


def profile_path(profile: str, profiles_dir: Path | None = None) -> Path | None:
    """A YAML path given as the profile, else `<profiles_dir>/NAME.yaml` (default
    ./config/profiles) when it exists, else the built-in profile NAME; None if neither."""
    candidate = Path(profile)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate if _exists(candidate) else None
    local = (profiles_dir if profiles_dir is not None else PROFILES_DIR) / f"{profile}.yaml"
    if _exists(local):
        return local
    builtin = _builtin_profiles() / f"{profile}.yaml"
    return builtin if _exists(builtin) else None


def _exists(path: Path) -> bool:
    """Path.exists() raises on a NUL byte or a name too long for the file system:
    such a profile name is simply not found."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def read_profile(profile: str, profiles_dir: Path | None = None) -> dict[str, Any]:
    """The profile's sections as read from its file (config.profile_yaml: bounded YAML)."""
    path = profile_path(profile, profiles_dir)
    if path is None:
        known = ", ".join(known_profiles(profiles_dir))
        raise ConfigError(
            f"profile {short(profile)!r} not found (known: {known}; or a path to a .yaml)"
        )
    try:
        data = load_profile_file(path)
    except ProfileError as exc:
        raise ConfigError(str(exc)) from None
    stem = Path(profile).stem
    named = data.setdefault("profile", stem)
    if Path(profile).suffix not in (".yaml", ".yml") and named != stem:
        # chosen by name: the name is the profile (the prod promotion gate, the database)
        raise ConfigError(
            f"profile {short_path(path)} says profile: {short(repr(named))}, but it was"
            f" chosen as {short(stem)!r}: remove that line or make it {short(stem)}"
        )
    return data
