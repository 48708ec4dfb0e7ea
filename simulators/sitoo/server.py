"""SitooSimulator: the simulated account behind an aiohttp server, in-process or as a process."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from tillsync.schemas.settings import Settings

from .app import Guard, RestApi
from .control import ControlApi
from .events import ANSWER_TIMEOUT_S, DEFAULT_RETRY_DELAYS_S, EventsPusher
from .faults import Faults
from .seed import SeedSpec, seed
from .state import SitooState

DEFAULT_SEED = SeedSpec()


class SitooSimulator:
    """A Sitoo account speaking REST v2 and pushing Events SPI batches.

    ``rate`` is the requests/second past which REST calls get 429 (0 = unlimited); ``seed``
    makes ids, prices and stock repeatable; ``seed_spec=None`` starts with an empty account.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        events_url: str | None = None,
        rate: float = 0.0,
        seed: int | None = 0,
        seed_spec: SeedSpec | None = DEFAULT_SEED,
        faults: Faults | None = None,
        event_retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS_S,
        event_answer_timeout: float = ANSWER_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings.require("sitoo_account_id", "sitoo_api_id", "sitoo_api_password")
        assert settings.sitoo_account_id is not None and settings.sitoo_api_id is not None
        assert settings.sitoo_api_password is not None
        self.settings = settings
        self.rng = random.Random(seed)
        self.faults = faults or Faults()
        self.state = SitooState(
            account_id=settings.sitoo_account_id,
            eshop_id=settings.sitoo_site_id,
            seed=seed,
            clock=clock,
        )
        auth = None
        if settings.sitoo_events_username and settings.sitoo_events_password:
            auth = (
                settings.sitoo_events_username,
                settings.sitoo_events_password.get_secret_value(),
            )
        self.events = EventsPusher(
            events_url,
            account_id=settings.sitoo_account_id,
            auth=auth,
            faults=self.faults,
            rng=random.Random(None if seed is None else seed + 1),
            answer_timeout=event_answer_timeout,
            retry_delays=event_retry_delays,
            clock=clock,
        )
        self.state.set_emitter(self.events.emit)
        self.guard = Guard(
            account_id=settings.sitoo_account_id,
            api_id=settings.sitoo_api_id,
            password=settings.sitoo_api_password.get_secret_value(),
            rate=rate,
            faults=self.faults,
            rng=self.rng,
        )
        if seed_spec is not None:
            seed_network(self.state, seed_spec)
        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None

    @property
    def account_prefix(self) -> str:
        return f"/v2/accounts/{self.state.account_id}"

    @property
    def account_url(self) -> str:
        assert self.base_url is not None, "start() the simulator first"
        return self.base_url + self.account_prefix

    def app(self) -> web.Application:
        control = ControlApi(self)
        app = web.Application(middlewares=[control.middleware, self.guard.middleware])
        app.add_routes(RestApi(self.state).routes(self.account_prefix))
        app.add_routes(control.routes())
        return app

    def set_faults(self, **spec: Any) -> None:
        """e.g. ``set_faults(error_rate=0.2, throttle_for_s=3, latency_ms=(5, 50))``."""
        self.faults.update(spec)

    def client_settings(self) -> Settings:
        """The same settings, pointed at this simulator."""
        assert self.base_url is not None, "start() the simulator first"
        return self.settings.model_copy(update={"sitoo_base_url": self.base_url})

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = any free port); returns the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[-1][1]
        self.base_url = f"http://{host}:{bound}"
        await self.events.start()
        return self.base_url

    async def stop(self) -> None:
        await self.events.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def seed_network(state: SitooState, spec: SeedSpec) -> None:
    seed(state, spec)
