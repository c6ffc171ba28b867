"""A raw HTTP client for the emulator's signed routes, to send what ccxt's own
rounding would never send and to read answers exactly as the emulator wrote them."""

from typing import Any

import aiohttp

from perps_emulator import EmulatorServer


class Client:
    """Signed-looking Binance requests: the emulator accepts any signature."""

    def __init__(self, server: EmulatorServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    async def __call__(self, method: str, path: str, **params: Any) -> tuple[int, Any]:
        query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
        query.setdefault("timestamp", str(self.server.clock()))  # the server's own time
        query["signature"] = "any"
        url = self.server.base_url + path
        headers = {"X-MBX-APIKEY": "key"}
        if method in ("GET", "DELETE"):
            response = await self.session.request(method, url, params=query, headers=headers)
        else:
            response = await self.session.request(method, url, data=query, headers=headers)
        async with response:
            return response.status, await response.json(content_type=None)

    async def order(self, **params: Any) -> tuple[int, Any]:
        return await self("POST", "/fapi/v1/order", **params)

    async def ok(self, method: str, path: str, **params: Any) -> Any:
        status, body = await self(method, path, **params)
        assert status == 200, body
        return body

    async def error_code(self, method: str, path: str, **params: Any) -> int:
        status, body = await self(method, path, **params)
        assert status == 400, body
        code: int = body["code"]
        return code
