"""The two calls bb.cooker makes: auto_start when the configuration is parsed, auto_shutdown on exit."""

import logging


class PRServiceConfigError(Exception):
    pass


def auto_start(d):
    if (d.getVar("PRSERV_HOST") or "").strip():
        logging.getLogger("BitBake.PRserv").critical("PRSERV_HOST is set, but bitbake-setup's bb library comes "
                                                     "without a PR service")
        raise PRServiceConfigError
    return None


def auto_shutdown():
    pass
