"""Forest's version, in a leaf module: modules inside ``agent`` import it from here, not
from the ``agent`` package, whose lazy facade imports ``agent.api`` (a cycle otherwise)."""

__version__ = "0.1.0"
