"""Waiting in a test for something a running bot, server or emulator does on its own
time: poll `check` on the event loop until it holds, bounded (asyncio.TimeoutError when
it never does). No fixed sleeps: a loaded machine only makes the wait longer."""

import asyncio
from collections.abc import Callable


async def until(check: Callable[[], bool], timeout: float = 30.0, every: float = 0.02) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(every)
