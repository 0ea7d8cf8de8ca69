"""The console entry point: run the connector with Airbyte's entrypoint, config problems named by field."""

from __future__ import annotations

import gc
import sys
from typing import Any

from airbyte_cdk.entrypoint import PRINT_BUFFER, AirbyteEntrypoint
from airbyte_cdk.models import ConnectorSpecification
from typing_extensions import override

from source_dixa.config import parse_config
from source_dixa.http_common import wall_clock_ms
from source_dixa.source import SourceDixa

# The CDK's shared output buffer (records and logs, in order) flushes every 0.1 s by default: about 2,000 serialised
# records held at once, 35-40 MB of peak RSS in the 100k-record benchmark. 10 ms keeps about a fifth of that, at no
# measurable cost in speed (bench/README.md).
PRINT_FLUSH_INTERVAL_S = 0.01


class DixaEntrypoint(AirbyteEntrypoint):
    """Airbyte's entrypoint, except that our own config checks run before the generic JSON-schema ones.

    The schema check alone says "32 is greater than the maximum of 31" without naming the field.
    """

    @staticmethod
    @override
    def validate_connection(source_spec: ConnectorSpecification, config: Any) -> None:
        parse_config(config, wall_clock_ms())
        AirbyteEntrypoint.validate_connection(source_spec, config)


# Every page of a read makes thousands of short-lived objects, and each full collection also walks the ~95k objects
# the CDK's imports leave behind. Freezing those and collecting the young generation less often took 17 % off a
# 500k-record Dixa API read with the same peak RSS (bench/README.md, "Dixa API").
GC_GEN0_THRESHOLD = 50_000


def run() -> None:
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 100)
    entrypoint = DixaEntrypoint(SourceDixa())
    parsed_args = entrypoint.parse_args(sys.argv[1:])
    PRINT_BUFFER.flush_interval = PRINT_FLUSH_INTERVAL_S
    with PRINT_BUFFER:
        for message in entrypoint.run(parsed_args):
            print(f"{message}\n", end="")
