"""Demonstrations on real components: faces that drive a backend through the controller.

``qemu`` (``presplit demo qemu``: the presplit policy on QEMU guests),
``failover`` (``presplit demo qemu --failover``: the orchestrator that breaks
hosts and the controller) and ``ha_agent`` (the failover controller process
and its HA agent). They live here, not in ``backends/``, because they import
the controller (``control``, ``apply``); backends only touch infrastructure.
"""
