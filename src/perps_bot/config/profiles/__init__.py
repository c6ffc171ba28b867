"""The built-in profiles (dev, canary, prod), shipped as package data so the command works
from any folder. A `config/profiles/NAME.yaml` in the working directory overrides one."""
