"""matplotlib figures: arrays in, Figure out, no global state (one module per analysis).

Every function uses the non-interactive Agg canvas through ``matplotlib.figure.Figure``
directly, so nothing touches pyplot's global state.
"""
