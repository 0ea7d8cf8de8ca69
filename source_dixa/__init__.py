"""source-dixa: an Airbyte source for the Dixa Exports API."""

from source_dixa.source import SourceDixa

__all__ = ["SourceDixa"]
