"""Imported by bb.siggen beside hashserv itself; see hashserv/__init__.py."""
