"""Per-environment settings (``infra/config/<env>.json``), validated at synth.

A bad file fails ``cdk synth`` with one message naming the file and every offending field. No
secrets live here: venue keys are set in Secrets Manager after deploy (docs/deploy.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONFIG_DIR = Path(__file__).resolve().parent / "config"
ENVIRONMENTS = ("dev", "staging", "prod")

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922)


class ConfigError(ValueError):
    """A config file that does not validate; the message lists every problem."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NatConfig(_Model):
    """Internet egress for the functions and the streamer that call venues.

    ``none``: no NAT (only the paper venue and VPC endpoints are reachable); ``instance``: one
    t4g NAT instance; ``gateway``: managed NAT gateways (``gateways`` of them, at most one per AZ).
    ``monthly_cost_usd`` is the stated idle cost used by docs/deploy.md, not a computed figure.
    """

    mode: Literal["none", "instance", "gateway"]
    gateways: int = Field(default=1, ge=1, le=2)
    instance_type: str = Field(default="t4g.nano", pattern=r"^[a-z0-9]+\.[a-z0-9]+$")
    monthly_cost_usd: float = Field(ge=0)


class EndpointsConfig(_Model):
    """Interface endpoints cost per AZ-hour, so they are a per-environment choice (gateway ones are free)."""

    interface: bool
    az_count: int = Field(default=2, ge=1, le=2)


class AuroraConfig(_Model):
    engine_version: str = Field(default="16.6", pattern=r"^\d+\.\d+$")
    min_acu: float = Field(ge=0, le=256)
    max_acu: float = Field(ge=1, le=256)
    readers: int = Field(default=0, ge=0, le=3)
    seconds_until_auto_pause: int = Field(default=300, ge=300, le=86400)
    backup_retention_days: int = Field(default=1, ge=1, le=35)
    database_name: str = Field(default="desk", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    schema_name: str = Field(default="desk", pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    @field_validator("min_acu", "max_acu")
    @classmethod
    def _half_steps(cls, value: float) -> float:
        if (value * 2) != int(value * 2):
            raise ValueError("Aurora capacity moves in steps of 0.5 ACU")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> AuroraConfig:
        if self.min_acu > self.max_acu:
            raise ValueError(f"min_acu ({self.min_acu}) exceeds max_acu ({self.max_acu})")
        return self


class CacheConfig(_Model):
    engine: Literal["valkey", "redis"] = "valkey"
    major_version: str = "8"
    max_storage_gb: int = Field(default=1, ge=1, le=5000)
    max_ecpu_per_second: int = Field(default=5000, ge=1000, le=15_000_000)


class AlarmConfig(_Model):
    evaluation_periods: int = Field(default=1, ge=1)
    period_seconds: int = Field(default=60, ge=60)
    function_errors: int = Field(default=1, ge=1)
    function_throttles: int = Field(default=1, ge=1)
    execution_failures: int = Field(default=1, ge=1)
    stale_quote_seconds: float = Field(default=10, gt=0)
    reconciliation_drift: float = Field(default=0, ge=0)
    risk_breaches: int = Field(default=1, ge=1)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Throttle(_Model):
    rate_limit: float = Field(gt=0)
    burst_limit: int = Field(ge=1)


class ApiConfig(_Model):
    throttle: Throttle
    route_throttles: dict[str, Throttle] = Field(default_factory=dict)
    # None: the API stack creates a Cognito user pool and uses it as the JWT issuer.
    jwt_issuer: str | None = Field(default=None, pattern=r"^https://")
    jwt_audience: tuple[str, ...] = ()
    function_timeout: int = Field(default=29, ge=1, le=29)  # HTTP API integrations time out at 30 s
    function_memory: int = Field(default=1024, ge=128, le=10240)

    @field_validator("route_throttles")
    @classmethod
    def _route_keys(cls, routes: dict[str, Throttle]) -> dict[str, Throttle]:
        bad = [k for k in routes if k != "$default" and len(k.split(" ")) != 2]
        if bad:
            raise ValueError(f"route keys must be 'METHOD /path' or '$default', got {bad}")
        return routes

    @model_validator(mode="after")
    def _issuer_needs_audience(self) -> ApiConfig:
        if self.jwt_issuer and not self.jwt_audience:
            raise ValueError("jwt_audience is required when jwt_issuer is set")
        return self


class StreamerConfig(_Model):
    enabled: bool = True
    dockerfile: str = "services/streamer/Dockerfile"
    cpu: Literal[256, 512, 1024, 2048, 4096] = 256
    memory_mib: int = Field(default=512, ge=512, le=30720)
    desired_count: int = Field(default=1, ge=0, le=10)
    stop_timeout_seconds: int = Field(default=30, ge=2, le=120)
    health_check_command: tuple[str, ...] = ("CMD-SHELL", "python -m desk.cli health || exit 1")


class TaskFunctionConfig(_Model):
    """Defaults for the state machines' task functions (they are not in topology.json)."""

    timeout: int = Field(default=60, ge=1, le=900)
    memory: int = Field(default=1024, ge=128, le=10240)


class UniverseEntry(_Model):
    """One item of the universe, in the shape ``desk`` parses from ``DESK_UNIVERSE`` (checked again at run time)."""

    venue: str = Field(min_length=1)
    symbol: str = Field(min_length=1)
    timeframe: str | None = Field(default=None, pattern=r"^\d+[mhdw]$")
    timeframes: tuple[str, ...] = ()
    asset_class: Literal["crypto", "equity"] = "crypto"
    start: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> UniverseEntry:
        if (self.timeframe is None) == (not self.timeframes):
            raise ValueError(f"{self.venue} {self.symbol}: give exactly one of 'timeframe' or 'timeframes'")
        return self


class EnvConfig(_Model):
    environment: Literal["dev", "staging", "prod"]
    project: str = Field(default="lambda-desk", pattern=r"^[a-z][a-z0-9-]{1,30}$")
    owner: str = Field(min_length=1)
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    # Fixed here so synth needs no AZ lookup (no credentials, no cdk.context.json churn).
    availability_zones: tuple[str, str]
    vpc_cidr: str = Field(default="10.40.0.0/16", pattern=r"^\d+\.\d+\.\d+\.\d+/\d+$")
    architecture: Literal["arm64", "x86_64"] = "x86_64"
    nat: NatConfig
    endpoints: EndpointsConfig
    aurora: AuroraConfig
    cache: CacheConfig = CacheConfig()
    max_receive_count: int | None = Field(default=None, ge=1, le=1000)
    log_retention_days: int
    alarms: AlarmConfig = AlarmConfig()
    api: ApiConfig
    streamer: StreamerConfig = StreamerConfig()
    task_functions: TaskFunctionConfig = TaskFunctionConfig()
    universe: tuple[UniverseEntry, ...] = ()
    removal_policy: Literal["destroy", "retain", "snapshot"]
    powertools_layer_version: int = Field(ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch Logs accepts only {LOG_RETENTION_DAYS}")
        return days

    @model_validator(mode="after")
    def _coherent(self) -> EnvConfig:
        problems = [az for az in self.availability_zones if not az.startswith(self.region)]
        if problems:
            raise ValueError(f"availability zones {problems} are not in region {self.region}")
        if self.availability_zones[0] == self.availability_zones[1]:
            raise ValueError("the two availability zones must differ")
        if self.environment == "prod" and self.removal_policy == "destroy":
            raise ValueError("prod must not use removal_policy 'destroy'")
        return self

    @property
    def prefix(self) -> str:
        """Physical-name prefix, e.g. ``lambda-desk-dev``."""
        return f"{self.project}-{self.environment}"


def load_config(environment: str, directory: Path = CONFIG_DIR) -> EnvConfig:
    """``<directory>/<environment>.json`` as a validated :class:`EnvConfig`, or a :class:`ConfigError`."""
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {environment!r}: expected one of {', '.join(ENVIRONMENTS)}")
    path = directory / f"{environment}.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    try:
        config = EnvConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  - {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(f"{path} is invalid ({len(lines)} problem(s)):\n" + "\n".join(lines)) from None
    if config.environment != environment:
        raise ConfigError(f"{path}: 'environment' is {config.environment!r}, expected {environment!r}")
    return config
