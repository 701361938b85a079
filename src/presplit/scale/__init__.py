"""Scale-out tooling: synthetic fleets from real traces, Dask parameter sweeps, HTML reports.

- :mod:`presplit.scale.synthetic` -- resample real guest series into a larger scenario;
- :mod:`presplit.scale.sweep` -- policy x parameter x trace sweeps on Dask, resumable;
- :mod:`presplit.scale.report` -- one self-contained HTML report from a sweep's results.
"""
