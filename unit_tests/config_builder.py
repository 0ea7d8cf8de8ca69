"""Builds configs for tests: a valid default that each test changes in one place."""

from __future__ import annotations

from typing import Any


class ConfigBuilder:
    def __init__(self) -> None:
        self._config: dict[str, Any] = {
            "api_token": "unit-test-token-0123456789",
            "start_date": "2024-01-01",
            "batch_size": 31,
            "api_url": "http://127.0.0.1:8999",
            "dixa_api_url": "http://127.0.0.1:8999",
            "requests_per_minute": 6000,
            "dixa_api_requests_per_second": 1000,
        }

    def with_start_date(self, value: Any) -> ConfigBuilder:
        self._config["start_date"] = value
        return self

    def with_batch_size(self, value: Any) -> ConfigBuilder:
        self._config["batch_size"] = value
        return self

    def with_api_url(self, value: Any) -> ConfigBuilder:
        self._config["api_url"] = value
        return self

    def with_token(self, value: Any) -> ConfigBuilder:
        self._config["api_token"] = value
        return self

    def with_requests_per_minute(self, value: Any) -> ConfigBuilder:
        self._config["requests_per_minute"] = value
        return self

    def with_value(self, key: str, value: Any) -> ConfigBuilder:
        self._config[key] = value
        return self

    def without(self, key: str) -> ConfigBuilder:
        self._config.pop(key, None)
        return self

    def build(self) -> dict[str, Any]:
        return dict(self._config)
