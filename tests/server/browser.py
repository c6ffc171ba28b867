"""The dashboard tests' browser helpers: a real headless Chromium (scripts.headless), the
mark that skips without one, and polling the page until a condition holds."""

import asyncio

import pytest
from scripts.headless import Chromium, available

needs_chromium = pytest.mark.skipif(
    not available(), reason="no /usr/bin/chromium here (apt-get install -y chromium; CI does)"
)


async def until(page: Chromium, condition: str, timeout: float = 60) -> None:
    """Poll the page until JavaScript `condition` is true (AssertionError past `timeout`)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await page.eval(condition):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not true after {timeout}s: {condition}")
