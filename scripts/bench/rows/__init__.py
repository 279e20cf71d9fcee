"""Every row of the bench, in the order they run and print. A row is a function of the Bench that measures (or skips)
one row: to add one, write it in the module of its family and add it to that module's ROWS (in the order it prints)."""

from rows import baselines, convert, layers, partial, push, unpack

ROWS = {**convert.ROWS, **layers.ROWS, **baselines.ROWS, **push.ROWS, **partial.ROWS, **unpack.ROWS}
