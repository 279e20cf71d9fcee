"""Stands in for BitBake's hash equivalence package (bitbake/lib/hashserv), which the PyPI package bitbake-setup does
not ship although bb.siggen and bb.cooker import it. They use it only when BB_HASHSERVE is set, which the test
configuration never does; anything more than the import fails loudly."""

import re

UNIHASH_REGEX = re.compile(r"^[0-9a-f]{64}$")


def is_valid_unihash(value):
    return isinstance(value, str) and UNIHASH_REGEX.fullmatch(value) is not None


def _unavailable(*_args, **_kwargs):
    raise ImportError("hashserv is not available with bitbake-setup's bb library: leave BB_HASHSERVE unset")


create_server = create_client = create_async_client = _unavailable
