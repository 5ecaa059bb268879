"""The ingestion gate and Slack bot (``forest serve``): see :mod:`agent.service.app`."""

from agent.service.app import create_app
from agent.service.journal import journal_path

__all__ = ["create_app", "journal_path"]
