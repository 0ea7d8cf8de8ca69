"""The console entry point: run the connector with Airbyte's entrypoint, config problems named by field."""

from __future__ import annotations

import sys
from typing import Any

from airbyte_cdk.entrypoint import PRINT_BUFFER, AirbyteEntrypoint
from airbyte_cdk.models import ConnectorSpecification
from typing_extensions import override

from source_dixa.config import parse_config
from source_dixa.source import SourceDixa
from source_dixa.streams import wall_clock_ms


class DixaEntrypoint(AirbyteEntrypoint):
    """Airbyte's entrypoint, except that our own config checks run before the generic JSON-schema ones.

    The schema check alone says "32 is greater than the maximum of 31" without naming the field.
    """

    @staticmethod
    @override
    def validate_connection(source_spec: ConnectorSpecification, config: Any) -> None:
        parse_config(config, wall_clock_ms())
        AirbyteEntrypoint.validate_connection(source_spec, config)


def run() -> None:
    entrypoint = DixaEntrypoint(SourceDixa())
    parsed_args = entrypoint.parse_args(sys.argv[1:])
    with PRINT_BUFFER:
        for message in entrypoint.run(parsed_args):
            print(f"{message}\n", end="")
