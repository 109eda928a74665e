"""Meters: system and host health, cost and budgets, trading and RAG KPIs, health checks.

``MetersComponent`` plugs them into the pipeline ``configure()`` builds: the cost span
processor before the providers exist, everything else once they are global. The modules are
imported when the component starts, so ``import otel_monitoring`` stays cheap.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..components import Component

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor

    from ..sdk import Monitoring
    from .prices import PriceTable

_logger = logging.getLogger(__name__)


class MetersComponent(Component):
    name = "meters"

    def __init__(self, settings: Any):
        super().__init__(settings)
        self._prices: PriceTable | None = None
        self._processor: Any = None
        self.cost: Any = None
        self.trading: Any = None
        self.rag: Any = None
        self.system: Any = None
        self.host_health: Any = None
        self.health_runner: Any = None
        self.health_server: Any = None

    def prices(self) -> PriceTable:
        """The price table, loaded once. A bad user file is reported (``policy``: an error only in
        strict mode) and the packaged prices are used alone."""
        if self._prices is None:
            from .. import policy
            from .prices import PriceTableError, load_prices

            try:
                self._prices = load_prices(self.settings.prices_file)
            except PriceTableError as problem:
                policy.report(str(problem), strict=self.settings.strict,
                              consequence="Costs are priced from the packaged table only.")
                self._prices = load_prices(None)
        return self._prices

    def span_processors(self) -> list[SpanProcessor]:
        if not self.settings.cost_tracking:
            return []
        from .cost_processor import CostSpanProcessor

        self.prices()  # fail at configure() on a bad price file, before anything is built
        # The cost meter needs the meter provider, which does not exist yet: start() binds it.
        self._processor = CostSpanProcessor(None, self.settings.cost_attribute)
        return [self._processor]

    def start(self, monitoring: Monitoring) -> None:
        from ..config import ConfigError
        from . import cost, rag, trading
        from .budgets import BudgetTracker

        from .. import policy
        from ..thresholds import MARKET_DATA_DELAYED_SECONDS, MARKET_DATA_LIVE_SECONDS

        settings = self.settings
        live, delayed = settings.market_data_live_seconds, settings.market_data_delayed_seconds
        if delayed <= live:
            problem = ConfigError(
                "OTEL_MONITORING_MARKET_DATA_DELAYED_SECONDS must be above OTEL_MONITORING_MARKET_DATA_LIVE_SECONDS "
                f"(got {delayed:g} <= {live:g}). "
                f"Example: OTEL_MONITORING_MARKET_DATA_LIVE_SECONDS={MARKET_DATA_LIVE_SECONDS:g} "
                f"OTEL_MONITORING_MARKET_DATA_DELAYED_SECONDS={MARKET_DATA_DELAYED_SECONDS:g}")
            if "argument" in (settings.source("market_data_live_seconds"), settings.source("market_data_delayed_seconds")):
                raise problem
            policy.report(str(problem), strict=settings.strict, consequence=f"The defaults {MARKET_DATA_LIVE_SECONDS:g} and {MARKET_DATA_DELAYED_SECONDS:g} apply.")
            live, delayed = MARKET_DATA_LIVE_SECONDS, MARKET_DATA_DELAYED_SECONDS
        provider = monitoring.meter_provider

        ledger = None
        if settings.budgets and settings.snapshot_dir:
            from .spend_ledger import SpendLedger

            ledger = SpendLedger(settings.snapshot_dir)
        budgets = BudgetTracker(settings.budgets, ledger=ledger)
        budgets.observe(provider)
        self.cost = cost.CostMeter(provider, self.prices(), budgets, settings.cost_attribute,
                                   settings.cost_attribute_limit)
        cost.install(self.cost)
        if self._processor is not None:
            self._processor.cost = self.cost

        self.trading = trading.TradingKPIs(provider, settings.kpi_window, live, delayed)
        trading.install(self.trading)
        self.rag = rag.RagKPIs(provider, settings.kpi_window, settings.rag_relevance_threshold)
        rag.install(self.rag)

        self._start_system(provider)
        self._start_health(provider)

    def _start_system(self, provider: Any) -> None:
        if not self.settings.system_metrics:
            return
        from .host_health import HostHealth
        from .system import FilesystemList, SystemMeters

        filesystems = FilesystemList(self.settings.filesystem_mountpoints)
        self.system = SystemMeters(provider, extra=self.settings.system_metrics_extra,
                                   filesystems=filesystems)
        try:
            self.system.start()
        except Exception:  # the contrib instrumentor failing must not cost the other meters
            _logger.warning("otel-monitoring: the system metrics instrumentor failed to start", exc_info=True)
        self.host_health = HostHealth(self.settings.host_health_thresholds, filesystems)
        self.host_health.observe(provider)

    def _start_health(self, provider: Any) -> None:
        from . import checks
        from .health_checks import HealthRunner, registry

        settings = self.settings
        registry.default_timeout = settings.health_check_timeout
        registry.observe(provider)
        if settings.health_default_checks:
            thresholds = settings.host_health_thresholds
            names = set(registry.names())
            host = self.host_health
            # CPU and memory checks read the host-health sampler (reusing a reading younger than one
            # check interval), so a check, the utilization gauge and the host alerts name one value.
            def reading(resource: str) -> Any:
                if host is None:
                    return None
                return lambda: host.read(max_age=settings.health_check_interval).utilization[resource]

            defaults = {
                "disk": lambda: checks.disk_space_check("/", thresholds["disk"][1] / 100),
                "memory": lambda: checks.memory_check(thresholds["memory"][1] / 100, reading("memory")),
                "cpu": lambda: checks.cpu_check(thresholds["cpu"][1] / 100, reading("cpu")),
            }
            for name, factory in defaults.items():
                # The application's own check of that name wins. Host checks are reported (in
                # /health/detailed, the check-status metric and its alerts) but not critical: a
                # busy neighbour must not make a load balancer drain a process that works.
                if name not in names:
                    registry.register(name, factory(), critical=False)
        self.health_runner = HealthRunner(registry, settings.health_check_interval)
        self.health_runner.start()
        if settings.health_port is not None:
            from .health_server import HealthServer

            try:
                self.health_server = HealthServer(registry, settings.health_host, settings.health_port).start()
            except OSError as error:
                _logger.error("otel-monitoring: cannot serve health checks on %s:%s (%s); set "
                              "OTEL_MONITORING_HEALTH_PORT to a free port", settings.health_host,
                              settings.health_port, error)
            else:
                _logger.info("otel-monitoring: health checks at %s", self.health_server.url)

    def shutdown(self) -> None:
        from . import cost, rag, trading

        if self.health_runner is not None:
            self.health_runner.stop()
        if self.health_server is not None:
            self.health_server.stop()
        if self.system is not None:
            self.system.shutdown()
        for module, instance in ((cost, self.cost), (trading, self.trading), (rag, self.rag)):
            if instance is not None and module._current.value is instance:
                module.install(None)
