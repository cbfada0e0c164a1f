"""cleartext: find mail servers that let a password or mail cross the network in clear.

The package is a one-way pipeline: targets -> probe -> assess -> record. See docs/architecture.md.
"""

__version__ = "0.1.0"
