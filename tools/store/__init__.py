"""The incident store: its contract (the tables users load), the hardened connection, UTC
timestamps, the shared row loaders, redaction, and the loaders that fill it from files,
OpenLineage events and OpenTelemetry traces.

It imports nothing from the evidence tools above it (an import contract checks that).
"""
