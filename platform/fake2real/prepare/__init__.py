"""Preparation (layer 5): what an experiment trains on, made before it trains. Where a config's
tables live (``workspace``), the synthetic pools and draws a mixture needs (``synthetic``,
``pools``), the generators the platform trains for them (``generators``), and what a sweep will
cost (``cost``)."""
