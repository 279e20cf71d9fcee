"""Stands in for BitBake's PR service package (bitbake/lib/prserv), which the PyPI package bitbake-setup does not ship
although bb.cooker imports prserv.serv. Without PRSERV_HOST (the test configuration sets none) the cooker only asks
it to start nothing."""
