"""The runtime core: site model, settings, runs, broker, execution, destinations and the author SDK."""
